"""Figures of a model's predictions on one split: ROC, precision-recall, confusion, calibration,
and the Kolmogorov-Smirnov chart.

Drawn with matplotlib's object API (no pyplot state), so they render on a headless
machine and inside a training loop; `tensorboard_views.py` logs them to TensorBoard.
Every function takes probabilities and 0/1 targets as 1-D tensors, and `rows`: which rows
they are ("validation", "test", "out-of-fold"), named in the title, since a bag's
out-of-fold figures and a fold's validation figures otherwise look alike.
"""

from __future__ import annotations

import numpy as np
import torch
import torchmetrics.functional.classification as tmf
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from lightning_modules.metrics import CALIBRATION_BINS
from risk.discrimination import ks_curve

DPI = 80
SIZE = (4.2, 4.0)
# Fixed margins (fractions of the figure) that fit the axis labels and titles of these
# figures, instead of matplotlib's constrained layout: measuring every text's extent made
# up two thirds of a drawing, and the five figures cost 1.3 s per validation write
# (0.5 s with fixed margins), a tenth of a small dataset's fit.
MARGINS = {"left": 0.17, "right": 0.96, "bottom": 0.12, "top": 0.92}


def roc_figure(probs: torch.Tensor, targets: torch.Tensor, threshold: float, rows: str) -> Figure:
    """ROC curve with the chance diagonal and the operating point at the decision
    threshold; the title carries the AUC."""
    labels = targets.long()
    fpr, tpr, _ = tmf.binary_roc(probs, labels)
    auc = float(tmf.binary_auroc(probs, labels))
    point = (
        1 - float(tmf.binary_specificity(probs, labels, threshold=threshold)),
        float(tmf.binary_recall(probs, labels, threshold=threshold)),
    )
    figure, axes = _axes()
    axes.plot(fpr.numpy(), tpr.numpy(), color="#4c72b0")
    axes.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1)
    axes.plot(*point, "o", color="#c44e52", label=f"threshold {threshold:.3f}")
    axes.legend(loc="lower right", fontsize=8)
    _square(axes, "false positive rate", "true positive rate", f"ROC, {rows} (AUC {auc:.4f})")
    return figure


def precision_recall_figure(
    probs: torch.Tensor, targets: torch.Tensor, threshold: float, rows: str
) -> Figure:
    """Precision-recall curve, the no-skill line at the positive rate, and the operating
    point at the decision threshold."""
    labels = targets.long()
    precision, recall, _ = tmf.binary_precision_recall_curve(probs, labels)
    average_precision = float(tmf.binary_average_precision(probs, labels))
    point = (
        float(tmf.binary_recall(probs, labels, threshold=threshold)),
        float(tmf.binary_precision(probs, labels, threshold=threshold)),
    )
    figure, axes = _axes()
    axes.plot(recall.numpy(), precision.numpy(), color="#4c72b0")
    axes.axhline(float(targets.float().mean()), color="#999", linestyle="--", linewidth=1)
    axes.plot(*point, "o", color="#c44e52", label=f"threshold {threshold:.3f}")
    axes.legend(loc="upper right", fontsize=8)
    _square(axes, "recall", "precision", f"PR, {rows} (AP {average_precision:.4f})")
    return figure


def ks_figure(probs: torch.Tensor, targets: torch.Tensor, rows: str) -> Figure:
    """The KS chart: cumulative shares of defaulters and of non-defaulters among the
    applicants ranked riskiest first, and the widest gap between them (the KS statistic)
    with the default probability at which it is reached."""
    curve = ks_curve(probs, targets)
    gap = curve.defaulters - curve.non_defaulters
    best = int(torch.argmax(gap.abs()))
    x = curve.population.numpy()
    figure, axes = _axes()
    axes.plot(x, curve.defaulters.numpy(), color="#c44e52", label="defaulters")
    axes.plot(x, curve.non_defaulters.numpy(), color="#4c72b0", label="non-defaulters")
    axes.vlines(
        x[best],
        float(curve.non_defaulters[best]),
        float(curve.defaulters[best]),
        color="#333",
        linestyle="--",
        label=f"KS at p >= {float(curve.cutoffs[best]):.3f}",
    )
    axes.legend(loc="lower right", fontsize=8)
    _square(
        axes,
        "share of applicants, riskiest first",
        "cumulative share",
        f"KS chart, {rows} (KS {float(gap.abs()[best]):.4f})",
    )
    return figure


def confusion_figure(
    probs: torch.Tensor, targets: torch.Tensor, threshold: float, rows: str
) -> Figure:
    """Counts at the decision threshold, with each cell's share of its true class."""
    matrix = tmf.binary_confusion_matrix(probs, targets.long(), threshold=threshold).numpy()
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axes = _axes()
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if shares[row, column] > 0.5 else "black"
        axes.text(
            column,
            row,
            f"{count:,}\n{shares[row, column]:.1%}",
            ha="center",
            va="center",
            color=colour,
        )
    axes.set_xticks([0, 1], ["no default", "default"])
    axes.set_yticks([0, 1], ["no default", "default"], rotation=90, va="center")
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual (% of the actual class)")
    axes.set_title(f"Confusion, {rows}, threshold {threshold:.3f}", fontsize=10)
    return figure


def reliability_bins(
    probs: torch.Tensor, targets: torch.Tensor, n_bins: int = CALIBRATION_BINS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Equal-width probability bins: (mean predicted, observed default rate, rows) per bin.

    Empty bins hold NaN rates and 0 rows. The bins are those of the protocol's expected
    calibration error, so the diagram shows the very gaps that metric averages.
    """
    index = (probs.double() * n_bins).long().clamp(0, n_bins - 1)
    counts = torch.bincount(index, minlength=n_bins)
    predicted = torch.bincount(index, weights=probs.double(), minlength=n_bins)
    observed = torch.bincount(index, weights=targets.double(), minlength=n_bins)
    denominator = counts.double().where(counts > 0, torch.nan)
    return predicted / denominator, observed / denominator, counts


def reliability_figure(
    probs: torch.Tensor, targets: torch.Tensor, rows: str, n_bins: int = CALIBRATION_BINS
) -> Figure:
    """Observed default rate against mean predicted probability per bin, above a histogram
    of the predictions (log scale, since most rows sit in a few bins)."""
    predicted, observed, counts = reliability_bins(probs, targets, n_bins)
    present = counts > 0
    error = float((counts[present] * (predicted - observed)[present].abs()).sum() / counts.sum())
    height = SIZE[1] + 1.2
    figure = Figure(figsize=(SIZE[0], height), dpi=DPI)
    FigureCanvasAgg(figure)
    # The same margins in inches as the one-axes figures, the taller figure notwithstanding.
    vertical = {key: 1 - (1 - MARGINS[key]) * SIZE[1] / height for key in ("top",)}
    vertical["bottom"] = MARGINS["bottom"] * SIZE[1] / height
    figure.subplots_adjust(left=MARGINS["left"], right=MARGINS["right"], hspace=0.08, **vertical)
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1)
    top.plot(predicted[present].numpy(), observed[present].numpy(), "o-", color="#4c72b0")
    top.set_ylim(0, 1)
    top.set_ylabel("observed default rate")
    top.set_title(f"Reliability, {rows} (ECE {error:.4f}, {n_bins} bins)", fontsize=10)
    edges = np.linspace(0, 1, n_bins + 1)
    bottom.stairs(counts.numpy(), edges, fill=True, color="#8172b3")
    bottom.set_yscale("log")
    # Within a decade matplotlib labels the minor ticks (2x10^3, 3x10^3...), which overlap
    # and push the axis label out of the figure; the decades alone are enough.
    bottom.yaxis.set_minor_formatter(NullFormatter())
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("predicted probability")
    bottom.set_ylabel("rows")
    return figure


def _axes() -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(**MARGINS)
    return figure, figure.add_subplot()


def _square(axes: Axes, xlabel: str, ylabel: str, title: str) -> None:
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
