import numpy as np
import pytest
import torch

from lightning_modules.metrics import CALIBRATION_BINS, binary_report
from risk.bootstrap import WeightedMetrics, bootstrap_intervals


@pytest.fixture
def predictions():
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(3_000, generator=generator, dtype=torch.float64) ** 2
    targets = (torch.rand(3_000, generator=generator, dtype=torch.float64) < probs).double()
    return probs, targets


def test_estimates_are_the_protocols_metrics(predictions):
    probs, targets = predictions
    table = bootstrap_intervals(
        probs, targets, 0.4, calibration_bins=CALIBRATION_BINS, resamples=20
    ).set_index("metric")
    report = binary_report(probs, targets, 0.4)
    for name, row in table.iterrows():
        assert row["estimate"] == pytest.approx(float(report[name]), abs=2e-6), name
        assert row["low"] < row["high"], name
    # A resample's noise only adds calibration gaps: that interval may sit above the estimate.
    ranking = table.drop(index="calibration_error")
    assert (
        (ranking["low"] <= ranking["estimate"]) & (ranking["estimate"] <= ranking["high"])
    ).all()


def test_a_weighted_resample_scores_like_its_rows_repeated(predictions):
    probs, targets = predictions
    counts = torch.from_numpy(
        np.random.default_rng(2).multinomial(len(probs), [1 / len(probs)] * len(probs), size=2)
    )
    metrics = WeightedMetrics(probs, targets, 0.4, CALIBRATION_BINS)(counts.double())
    for row in range(2):
        index = torch.repeat_interleave(torch.arange(len(probs)), counts[row])
        report = binary_report(probs[index], targets[index], 0.4)
        for name, values in metrics.items():
            assert float(values[row]) == pytest.approx(float(report[name]), abs=2e-6), name


def test_intervals_are_reproducible_and_narrow_with_more_rows(predictions):
    probs, targets = predictions

    def width(n: int, seed: int = 0) -> float:
        table = bootstrap_intervals(
            probs[:n], targets[:n], 0.4, calibration_bins=15, resamples=200, seed=seed
        ).set_index("metric")
        return float(table.loc["roc_auc", "high"] - table.loc["roc_auc", "low"])

    assert width(3_000) == width(3_000)
    assert width(3_000) != width(3_000, seed=1)
    assert width(3_000) < 0.6 * width(300)
