"""The model card: one Markdown page a credit-risk reviewer reads instead of the logs.

What the model was trained on, its settings, its test metrics with bootstrap intervals,
how well it ranks (Gini, KS) and how calibrated it is, what its decision threshold
trades, the gains table and the training distribution that `predict` checks new files
against. Rendering only: the callers compute every number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from risk.gains import CutoffTradeoff, defaults_format


@dataclass(frozen=True)
class ModelCard:
    """Everything the card shows.

    data: facts about the labelled file and its split, in display order; settings: the
    model's flat settings; metrics: `bootstrap_intervals` output (metric, estimate, low,
    high); ks_cutoff: the probability where KS is reached; gains: `gains_table` output;
    training: `distribution_summary` output; bagged_folds: the networks of a bag (0 for
    one network), whose temperature and threshold come from out-of-fold predictions and
    whose score reference from the test rows' scores; saved_epoch: the 0-based epoch of a
    single network's checkpoint; fold_epochs: the epochs each of a bag's networks trained
    (both unknown for checkpoints from before they were recorded).
    """

    title: str
    data: Mapping[str, str]
    settings: Mapping[str, object]
    metrics: pd.DataFrame
    resamples: int
    ks_cutoff: float
    temperature: float
    tradeoff: CutoffTradeoff
    gains: pd.DataFrame
    training: pd.DataFrame
    bagged_folds: int = 0
    saved_epoch: int | None = None
    fold_epochs: tuple[int, ...] = ()


def render_model_card(card: ModelCard) -> str:
    """The card as GitHub-flavoured Markdown."""
    metric = card.metrics.set_index("metric")
    sections = [
        f"# Model card: {card.title}",
        "## Data\n\n" + markdown_table(pd.DataFrame(card.data.items(), columns=["", "value"])),
        "## Model\n\n"
        + markdown_table(pd.DataFrame(card.settings.items(), columns=["setting", "value"]))
        + _training_sentence(card),
        _metrics_section(card),
        "## Discrimination\n\n"
        f"Gini {_interval(metric.loc['gini'])}; Kolmogorov-Smirnov "
        f"{_interval(metric.loc['ks'])}, reached at default probability >= "
        f"{card.ks_cutoff:.4f}.",
        "## Calibration\n\n"
        f"Expected calibration error {_interval(metric.loc['calibration_error'])}, Brier "
        f"score {_interval(metric.loc['brier'])}, after temperature scaling with T = "
        f"{card.temperature:.3f} (fitted on {_calibration_rows(card)}). Resampling adds "
        "noise, and noise only adds calibration gaps, so the calibration error's interval "
        "can lie above its estimate.",
        _threshold_section(card.tradeoff, _calibration_rows(card)),
        "## Gains table (test)\n\nApplicants ranked riskiest first, in bands of equal size. "
        "captured: share of all defaults in this band and the riskier ones; lift: the band's "
        "default rate over the overall rate.\n\n"
        + markdown_table(
            card.gains,
            {
                "score_from": "{:.4f}",
                "score_to": "{:.4f}",
                "rows": "{:,}",
                "defaults": defaults_format(card.gains),
                "default_rate": "{:.2%}",
                "captured": "{:.1%}",
                "lift": "{:.2f}",
            },
        ),
        "## Training distribution\n\nThe training rows (the score: "
        + (
            "the bag's scores on the test rows, which no network trained on"
            if card.bagged_folds
            else "the validation scores of the saved epoch"
        )
        + "), as stored in the checkpoint: `predict` measures each new file's population "
        "stability against these bins.\n\n"
        + markdown_table(card.training, {"rows": "{:,}", "missing": "{:.1%}"}),
    ]
    return "\n\n".join(sections) + "\n"


def _training_sentence(card: ModelCard) -> str:
    """How long the saved weights trained, and whether the trainer's limit set the budget
    (a `--trainer.max_epochs` left in a config shortens every later fit's schedule)."""
    planned, limit = card.settings.get("training_epochs"), card.settings.get("trainer/max_epochs")
    schedule = card.settings.get("lr_schedule")
    if planned is None or schedule is None:
        return ""
    if isinstance(planned, int):
        budget = "at most" if schedule == "constant" else "a budget of"
        plan = f"a {schedule} learning rate over {budget} {planned} epochs"
        if planned == limit:
            plan += f", the trainer's limit (`--trainer.max_epochs {limit}`)"
    else:
        plan = f"a {schedule} learning rate until early stopping"
    if card.fold_epochs:
        epochs = ", ".join(str(epochs) for epochs in card.fold_epochs)
        trained = (
            f"Each network of the bag trained {epochs} epochs (in fold order), keeping its "
            "best epoch on its held-out fold"
        )
    elif card.saved_epoch is not None:
        trained = (
            f"The saved weights are those of epoch {card.saved_epoch} (counted from 0, as in "
            f"the checkpoint's file name: {card.saved_epoch + 1} epochs of training)"
        )
    else:
        return ""
    return f"\n\n{trained}, with {plan}."


def markdown_table(frame: pd.DataFrame, formats: Mapping[str, str] | None = None) -> str:
    """A GitHub Markdown table; `formats` maps a column to a format string ("{:.2%}")."""
    formats = dict(formats or {})

    def cell(column: str, value: object) -> str:
        if column in formats and isinstance(value, int | float) and pd.notna(value):
            text = formats[column].format(value)
        elif isinstance(value, float):
            text = f"{value:.4g}"
        else:
            text = str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    header = [str(column) for column in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in frame.itertuples(index=False):
        cells = [cell(column, value) for column, value in zip(header, row, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _metrics_section(card: ModelCard) -> str:
    level = "95 %"
    table = pd.DataFrame(
        {
            "metric": card.metrics["metric"],
            "test": card.metrics["estimate"].map("{:.4f}".format),
            f"{level} interval": [
                f"[{low:.4f}, {high:.4f}]"
                for low, high in zip(card.metrics["low"], card.metrics["high"], strict=True)
            ],
        }
    )
    return (
        "## Test metrics\n\n"
        f"On the held-out test split; intervals: percentiles of {card.resamples} bootstrap "
        "resamples of the test rows (fixed seed).\n\n" + markdown_table(table)
    )


def _calibration_rows(card: ModelCard) -> str:
    if card.bagged_folds:
        return f"the out-of-fold predictions of the bag's {card.bagged_folds} networks"
    return "validation"


def _threshold_section(trade: CutoffTradeoff, chosen_on: str) -> str:
    head = (
        "## Decision threshold\n\n"
        f"Applicants with a default probability >= {trade.threshold:.4f} are predicted to "
        f"default (the threshold chosen on {chosen_on}). On the test rows it "
    )
    if np.isnan(trade.declined_default_rate):
        return head + (
            "declines no applicant: every test score is below it, so it approves 100% of "
            f"applicants, and they default at a rate of {trade.approved_default_rate:.2%}."
        )
    if np.isnan(trade.approved_default_rate):
        return head + (
            "approves no applicant: every test score is at or above it, so it declines all "
            f"of them, and they default at a rate of {trade.declined_default_rate:.2%}."
        )
    return head + (
        f"approves {trade.approval_rate:.1%} of applicants and declines "
        f"{trade.defaults_caught:.1%} of the defaulters; approved applicants default at a rate "
        f"of {trade.approved_default_rate:.2%}, declined ones at "
        f"{trade.declined_default_rate:.2%}."
    )


def _interval(row: pd.Series) -> str:
    return f"{row['estimate']:.4f} (95 % interval {row['low']:.4f}-{row['high']:.4f})"
