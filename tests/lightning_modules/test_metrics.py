import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from lightning_modules.metrics import PredictionCollector, binary_report, choose_threshold


def _brute_force_best(probs, targets, score):
    cuts = np.concatenate([[1.01], np.unique(probs), [0.0]])
    return max(score(targets, (probs >= cut).astype(int)) for cut in cuts)


@pytest.mark.parametrize(("objective", "score"), [("accuracy", accuracy_score), ("f1", f1_score)])
def test_threshold_is_as_good_as_brute_force_search(objective, score):
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, 500)
    probs = np.round(np.clip(0.3 * targets + rng.random(500) * 0.7, 0, 1), 2)  # many ties
    threshold = choose_threshold(torch.tensor(probs), torch.tensor(targets), objective)
    achieved = score(targets, (probs >= threshold).astype(int))
    assert achieved == pytest.approx(_brute_force_best(probs, targets, score))


def test_threshold_can_predict_nobody_positive():
    threshold = choose_threshold(torch.tensor([0.2, 0.4]), torch.tensor([0, 0]))
    assert threshold > 0.4


def test_report_matches_scikit_learn():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, 300)
    probs = np.clip(0.4 * targets + 0.6 * rng.random(300), 0.001, 0.999)
    report = binary_report(torch.tensor(probs), torch.tensor(targets), threshold=0.6)
    assert report["roc_auc"].item() == pytest.approx(roc_auc_score(targets, probs), abs=1e-6)
    assert report["log_loss"].item() == pytest.approx(log_loss(targets, probs), abs=1e-5)
    assert report["accuracy"].item() == pytest.approx(accuracy_score(targets, probs >= 0.6))
    assert report["accuracy_at_0.5"].item() == pytest.approx(accuracy_score(targets, probs >= 0.5))
    assert report["brier"].item() == pytest.approx(np.mean((probs - targets) ** 2), abs=1e-6)
    assert 0.0 <= report["calibration_error"].item() <= 1.0


def test_report_gives_gini_and_ks_as_credit_teams_do():
    rng = np.random.default_rng(2)
    targets = rng.integers(0, 2, 400)
    probs = np.clip(0.3 * targets + 0.7 * rng.random(400), 0.001, 0.999)
    report = binary_report(torch.tensor(probs), torch.tensor(targets), threshold=0.5)
    assert report["gini"].item() == pytest.approx(2 * roc_auc_score(targets, probs) - 1, abs=1e-6)
    ks = ks_2samp(probs[targets == 1], probs[targets == 0]).statistic
    assert report["ks"].item() == pytest.approx(ks, abs=1e-6)
    cutoff = report["ks_cutoff"].item()
    gap = (probs[targets == 1] >= cutoff).mean() - (probs[targets == 0] >= cutoff).mean()
    assert gap == pytest.approx(ks, abs=1e-6)


def test_collector_returns_every_pair_in_order_across_chunks_and_epochs():
    collector = PredictionCollector(chunk_rows=7)
    generator = torch.Generator().manual_seed(0)
    sizes = [3, 5, 7, 1, 20, 0, 2]  # batches that end exactly on, before and across chunks
    probs = [torch.rand(n, generator=generator) for n in sizes]
    targets = [(torch.rand(n, generator=generator) > 0.5).float() for n in sizes]
    for p, t in zip(probs, targets, strict=True):
        collector.update(p, t)
    got_probs, got_targets = collector.compute()
    assert torch.equal(got_probs, torch.cat(probs))
    assert torch.equal(got_targets, torch.cat(targets))
    collector.reset()  # the next epoch starts empty
    collector.update(torch.tensor([0.25, 0.5]), torch.tensor([1.0, 0.0]))
    assert [t.tolist() for t in collector.compute()] == [[0.25, 0.5], [1.0, 0.0]]
