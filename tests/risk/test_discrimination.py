import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from sklearn.metrics import average_precision_score, roc_auc_score

from risk.discrimination import RankedScores, gini, kolmogorov_smirnov, ks_curve


@pytest.fixture
def scored():
    """Scores with many ties (rounded), defaulters scoring higher on average."""
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, 2_000)
    scores = np.round(np.clip(0.2 * targets + rng.random(2_000) * 0.8, 0, 1), 2)
    return scores, targets


def test_ks_is_the_two_sample_statistic_and_its_cutoff_reaches_it(scored):
    scores, targets = scored
    ks = kolmogorov_smirnov(torch.tensor(scores), torch.tensor(targets))
    expected = ks_2samp(scores[targets == 1], scores[targets == 0]).statistic
    assert float(ks.statistic) == pytest.approx(expected, abs=1e-12)
    cutoff = float(ks.cutoff)
    above_bad = (scores[targets == 1] >= cutoff).mean()
    above_good = (scores[targets == 0] >= cutoff).mean()
    assert abs(above_bad - above_good) == pytest.approx(expected, abs=1e-12)


def test_ranking_measures_match_scikit_learn_with_ties(scored):
    scores, targets = scored
    ranked = RankedScores.of(torch.tensor(scores), torch.tensor(targets))
    assert float(ranked.roc_auc()) == pytest.approx(roc_auc_score(targets, scores), abs=1e-12)
    ap = average_precision_score(targets, scores)
    assert float(ranked.average_precision()) == pytest.approx(ap, abs=1e-12)
    assert float(gini(ranked.roc_auc())) == pytest.approx(2 * roc_auc_score(targets, scores) - 1)


def test_whole_number_weights_equal_repeated_rows(scored):
    scores, targets = scored
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 4, (3, len(scores)))
    ranked = RankedScores.of(torch.tensor(scores), torch.tensor(targets))
    weighted = ranked.roc_auc(torch.tensor(weights)), ranked.ks(torch.tensor(weights)).statistic
    for row, (auc, ks) in enumerate(zip(*weighted, strict=True)):
        repeated_scores = np.repeat(scores, weights[row])
        repeated_targets = np.repeat(targets, weights[row])
        assert float(auc) == pytest.approx(roc_auc_score(repeated_targets, repeated_scores))
        expected = ks_2samp(
            repeated_scores[repeated_targets == 1], repeated_scores[repeated_targets == 0]
        ).statistic
        assert float(ks) == pytest.approx(expected)


def test_ks_curve_runs_from_nobody_to_everybody_and_peaks_at_the_statistic(scored):
    scores, targets = scored
    curve = ks_curve(torch.tensor(scores), torch.tensor(targets))
    for shares in (curve.population, curve.defaulters, curve.non_defaulters):
        assert float(shares[0]) == 0 and float(shares[-1]) == pytest.approx(1.0)
        assert bool((shares.diff() >= 0).all())
    gap = (curve.defaulters - curve.non_defaulters).abs().max()
    ks = kolmogorov_smirnov(torch.tensor(scores), torch.tensor(targets)).statistic
    assert float(gap) == pytest.approx(float(ks))


def test_ks_is_zero_when_one_class_is_absent():
    ks = kolmogorov_smirnov(torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0, 0, 0]))
    assert float(ks.statistic) == 0.0
