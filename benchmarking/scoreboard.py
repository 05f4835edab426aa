"""From per-run results to the scoreboard: mean ± std tables and the paired comparison.

The metric columns are whatever `lightning_modules.metrics.binary_report` returns (ROC-AUC
first), so a metric added there reaches results.csv and summary.md with no edit here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.table import Table
from scipy import stats

from lightning_modules.metrics import binary_report

# What the paired comparison compares, and the first metric of every table.
HEADLINE = "roc_auc"


def report_metrics() -> tuple[str, ...]:
    """The names of the metrics `binary_report` returns, in its order with the headline first.

    Read from one call on four made-up predictions: the report's keys are the only list.
    """
    example = binary_report(torch.tensor([0.2, 0.7, 0.4, 0.9]), torch.tensor([0, 0, 1, 1]), 0.5)
    return tuple(sorted(example, key=lambda name: name != HEADLINE))


METRICS = report_metrics()
COSTS = (
    "fit_seconds",
    "search_seconds",
    "train_rows_per_second",
    "passes",
    "peak_rss_mb",
    "peak_rss_growth_mb",
)
# The paired comparison's confidence level, and how the tables format each cost column.
CONFIDENCE = 0.95
_COST_FORMATS = {
    "fit_seconds": "{:.1f}",
    "search_seconds": "{:.1f}",
    "train_rows_per_second": "{:,.0f}",
    "passes": "{:.0f}",
    "peak_rss_mb": "{:.0f}",
    "peak_rss_growth_mb": "{:.0f}",
}


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds of every metric and cost, per dataset x model.

    Only successful runs count; `seeds_ok` and `seeds_failed` say how many there were.
    Rows keep the order of `runs` (the requested datasets and models).
    """
    keys = ["dataset", "model"]
    counts = runs.groupby(keys, sort=False)["status"].agg(
        seeds_ok=lambda status: int((status == "ok").sum()),
        seeds_failed=lambda status: int((status != "ok").sum()),
    )
    ok = runs[runs["status"] == "ok"]
    columns = [name for name in (*METRICS, *COSTS) if name in ok.columns]
    grouped = ok.groupby(keys, sort=False)[columns]
    mean = grouped.mean().add_suffix("_mean")
    std = grouped.std(ddof=1).add_suffix("_std")
    summary = counts.join(mean).join(std)
    return summary.reset_index()


def paired_comparison(
    runs: pd.DataFrame, ours: Sequence[str], baselines: Sequence[str], metric: str = HEADLINE
) -> pd.DataFrame:
    """Each of our models against the best baseline of each dataset, seed by seed.

    The best baseline is the one with the highest mean `metric` over the seeds every
    baseline completed (over each one's own seeds where they share none): a baseline that
    failed on a hard seed must not win on the easy ones. Choosing it on the same test
    scores favours the baseline slightly, so an interval above zero is, if anything,
    conservative. The interval is the t-interval of the per-seed differences (ours -
    baseline) over the seeds where both runs succeeded.
    """
    ok = runs[runs["status"] == "ok"]
    rows: list[dict[str, Any]] = []
    for dataset in ok["dataset"].unique():
        on_dataset = ok[ok["dataset"] == dataset]
        candidates = on_dataset[on_dataset["model"].isin(baselines)]
        if candidates.empty:
            continue
        by_seed = candidates.pivot_table(index="seed", columns="model", values=metric)
        shared = by_seed.dropna()
        best = (shared if not shared.empty else by_seed).mean().idxmax()
        reference = on_dataset[on_dataset["model"] == best].set_index("seed")[metric]
        for model in ours:
            mine = on_dataset[on_dataset["model"] == model].set_index("seed")[metric]
            seeds = mine.index.intersection(reference.index)
            if seeds.empty:
                continue
            differences = (mine.loc[seeds] - reference.loc[seeds]).to_numpy(dtype=np.float64)
            low, high = difference_interval(differences)
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "best_baseline": best,
                    "metric": metric,
                    "model_mean": float(mine.loc[seeds].mean()),
                    "baseline_mean": float(reference.loc[seeds].mean()),
                    "mean_difference": float(differences.mean()),
                    "ci_low": low,
                    "ci_high": high,
                    "seeds": len(seeds),
                    "seeds_won": int((differences > 0).sum()),
                }
            )
    return pd.DataFrame(rows)


def worst_cases(
    runs: pd.DataFrame, models: Sequence[str], baselines: Sequence[str], metric: str = HEADLINE
) -> pd.DataFrame:
    """Every model, ours and each baseline alike, against the best of the baselines other
    than itself on each dataset (`paired_comparison`), summed up over all datasets: the
    mean difference, the datasets it is ahead or level on, those it trails beyond the noise
    (interval below zero), and its worst dataset.

    Why the baselines too: "at least the best baseline on every set" is a test a baseline
    can be held to as well, and how far the strongest baseline misses it says how much of
    a network's worst case is the sets' own volatility rather than the network.
    """
    rows: list[dict[str, Any]] = []
    for model in models:
        others = [baseline for baseline in baselines if baseline != model]
        paired = paired_comparison(runs, ours=[model], baselines=others, metric=metric)
        if paired.empty:
            continue
        worst = paired.loc[paired["mean_difference"].idxmin()]
        rows.append(
            {
                "model": model,
                "metric": metric,
                "datasets": len(paired),
                "mean_difference": float(paired["mean_difference"].mean()),
                "ahead_or_level": int((paired["mean_difference"] >= 0).sum()),
                "behind_beyond_noise": int((paired["ci_high"] < 0).sum()),
                "worst_dataset": worst["dataset"],
                "worst_against": worst["best_baseline"],
                "worst_difference": float(worst["mean_difference"]),
                "worst_ci_low": float(worst["ci_low"]),
                "worst_ci_high": float(worst["ci_high"]),
                "worst_seeds_won": int(worst["seeds_won"]),
                "worst_seeds": int(worst["seeds"]),
            }
        )
    return pd.DataFrame(rows)


WORST_CASES_TITLE = f"Every model against the best other baseline ({HEADLINE}, all datasets)"
_WORST_CASE_HEADER = [
    "model",
    "datasets",
    "mean difference",
    "ahead or level",
    "behind beyond the noise",
    "worst dataset",
    "against",
    "difference",
    f"{CONFIDENCE:.0%} interval",
    "seeds won",
]


def worst_cases_markdown(cases: pd.DataFrame) -> str:
    """The worst-case table, one row per model, over every dataset of the run."""
    rows = [_worst_case_cells(row) for row in cases.to_dict("records")]
    return f"## {WORST_CASES_TITLE}\n\n" + _markdown(_WORST_CASE_HEADER, rows) + "\n"


def worst_cases_table(cases: pd.DataFrame) -> Table:
    """The terminal view of `worst_cases_markdown`."""
    table = Table(
        title=WORST_CASES_TITLE,
        caption="ahead or level: mean difference at least 0; behind beyond the noise: the "
        f"{CONFIDENCE:.0%} interval below 0; the rest are behind inside the noise",
    )
    for header in _WORST_CASE_HEADER:
        table.add_column(header)
    for row in cases.to_dict("records"):
        table.add_row(*_worst_case_cells(row))
    return table


def _worst_case_cells(row: dict[str, Any]) -> list[str]:
    return [
        row["model"],
        str(row["datasets"]),
        f"{row['mean_difference']:+.4f}",
        str(row["ahead_or_level"]),
        str(row["behind_beyond_noise"]),
        row["worst_dataset"],
        row["worst_against"],
        f"{row['worst_difference']:+.4f}",
        _interval(row["worst_ci_low"], row["worst_ci_high"]),
        f"{row['worst_seeds_won']}/{row['worst_seeds']}",
    ]


def fit_time_ratios(
    runs: pd.DataFrame, ours: Sequence[str], reference: str = "lightgbm"
) -> pd.DataFrame:
    """How many times the reference model's fit time each of our models takes, per dataset.

    The ratio of the mean fit seconds over the seeds where both runs succeeded: what a user
    waits for the network against the tree, the cost that must stand beside any gain.
    """
    ok = runs[runs["status"] == "ok"]
    rows: list[dict[str, Any]] = []
    for dataset in ok["dataset"].unique():
        on_dataset = ok[ok["dataset"] == dataset]
        base = on_dataset[on_dataset["model"] == reference].set_index("seed")["fit_seconds"]
        for model in ours:
            mine = on_dataset[on_dataset["model"] == model].set_index("seed")["fit_seconds"]
            seeds = mine.index.intersection(base.index)
            if seeds.empty:
                continue
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "reference": reference,
                    "model_fit_seconds": float(mine.loc[seeds].mean()),
                    "reference_fit_seconds": float(base.loc[seeds].mean()),
                    "ratio": float(mine.loc[seeds].mean() / base.loc[seeds].mean()),
                    "seeds": len(seeds),
                }
            )
    return pd.DataFrame(rows)


def tuning_gains(runs: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Each tuned model against the same model untuned (`pairs`: (tuned, untuned)), seed
    by seed, with what the search cost: the gain and its price in one row."""
    ok = runs[runs["status"] == "ok"]
    tables = []
    for tuned, untuned in pairs:
        paired = paired_comparison(runs, ours=[tuned], baselines=[untuned])
        if paired.empty:
            continue
        mine = ok[ok["model"] == tuned].groupby("dataset")
        costs = pd.DataFrame(
            {
                "search_seconds": mine["search_seconds"].mean(),
                "fit_seconds": mine["fit_seconds"].mean(),
                "trials_complete": mine["trials_complete"].mean(),
                "trials_pruned": mine["trials_pruned"].mean(),
            }
        )
        tables.append(paired.join(costs, on="dataset").rename(columns={"best_baseline": "default"}))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def tuning_markdown(gains: pd.DataFrame) -> str:
    """The tuned models against their defaults, with the search's mean cost per run."""
    rows = [
        [
            *_paired_cells(row),
            f"{row['search_seconds']:.1f}",
            f"{row['fit_seconds']:.1f}",
            f"{row['trials_complete']:.1f} / {row['trials_pruned']:.1f}",
        ]
        for row in gains.to_dict("records")
    ]
    renamed = {
        "best baseline": "default",
        "model mean": "tuned mean",
        "baseline mean": "default mean",
    }
    header = [
        *(renamed.get(cell, cell) for cell in _PAIRED_HEADER),
        "search s",
        "search + refit s",
        "trials complete / pruned",
    ]
    return (
        f"### Tuned against default: {HEADLINE} of the tuned model minus the same model "
        "untuned (cost: mean per seed)\n\n" + _markdown(header, rows) + "\n"
    )


def difference_interval(differences: np.ndarray) -> tuple[float, float]:
    """The 95 % t-interval of the mean paired difference; NaN with fewer than two seeds."""
    if len(differences) < 2:
        return float("nan"), float("nan")
    mean = float(differences.mean())
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(differences) - 1) * stats.sem(differences)
    return mean - float(half), mean + float(half)


def markdown_tables(
    summary: pd.DataFrame, paired: pd.DataFrame, ratios: pd.DataFrame | None = None
) -> str:
    """The metrics table (ROC-AUC first), the cost table, the fit time against LightGBM
    (when it ran) and the paired comparison."""
    metrics = [name for name in METRICS if f"{name}_mean" in summary.columns]
    costs = [name for name in COSTS if f"{name}_mean" in summary.columns]
    records = summary.to_dict("records")
    metric_rows = [
        [row["dataset"], row["model"], _seeds(row), *(_mean_std(row, m, "{:.4f}") for m in metrics)]
        for row in records
    ]
    cost_rows = [
        [
            row["dataset"],
            row["model"],
            _seeds(row),
            *(_mean_std(row, c, _COST_FORMATS[c]) for c in costs),
        ]
        for row in records
    ]
    sections = [
        "### Metrics on test (mean ± std over seeds)",
        _markdown(["dataset", "model", "seeds ok", *metrics], metric_rows),
        "### Cost per run (mean ± std over seeds)",
        _markdown(["dataset", "model", "seeds ok", *costs], cost_rows),
    ]
    if ratios is not None and not ratios.empty:
        sections += [
            "### Fit time against LightGBM (mean fit seconds over the same seeds)",
            _markdown(_RATIO_HEADER, [_ratio_cells(row) for row in ratios.to_dict("records")]),
        ]
    if not paired.empty:  # empty where the run has no network or no baseline
        sections += [
            f"### Paired comparison: {HEADLINE} of our model minus the best baseline",
            _markdown(_PAIRED_HEADER, [_paired_cells(row) for row in paired.to_dict("records")]),
        ]
    return "\n\n".join(sections) + "\n"


def reference_markdown(paired: pd.DataFrame, reference: str) -> str:
    """The paired comparison of our other models against one of them (`reference`, e.g. the
    previous default run as a variant), headed by its name."""
    rows = [_paired_cells(row) for row in paired.to_dict("records")]
    header = ["reference" if cell == "best baseline" else cell for cell in _PAIRED_HEADER]
    return (
        f"### Paired comparison: {HEADLINE} of our model minus `{reference}`\n\n"
        + _markdown(header, rows)
        + "\n"
    )


def rich_tables(
    summary: pd.DataFrame, paired: pd.DataFrame, title: str = "Benchmark"
) -> list[Table]:
    """The terminal view: headline metrics and fit cost, then the paired comparison."""
    shown = ["roc_auc", "gini", "ks", "pr_auc", "accuracy", "log_loss", "brier"]
    scoreboard = Table(title=f"{title} (test, mean ± std over seeds)")
    for header in ("dataset", "model", "seeds ok", *shown, "fit s"):
        scoreboard.add_column(header, justify="left" if header in ("dataset", "model") else "right")
    for row in summary.to_dict("records"):
        cells = [_mean_std(row, name, "{:.4f}") for name in shown]
        scoreboard.add_row(
            row["dataset"],
            row["model"],
            _seeds(row),
            *cells,
            _mean_std(row, "fit_seconds", "{:.1f}"),
        )
    comparison = Table(
        title=f"{title}: paired {HEADLINE}, our model - best baseline ({CONFIDENCE:.0%} CI)"
    )
    for header in _PAIRED_HEADER:
        comparison.add_column(header)
    for record in paired.to_dict("records"):
        comparison.add_row(*_paired_cells(record))
    return [scoreboard, comparison] if not paired.empty else [scoreboard]


_RATIO_HEADER = ["dataset", "model", "fit s", "LightGBM fit s", "ratio", "seeds"]


def _ratio_cells(record: dict[str, Any]) -> list[str]:
    return [
        record["dataset"],
        record["model"],
        _seconds(record["model_fit_seconds"]),
        _seconds(record["reference_fit_seconds"]),
        f"{record['ratio']:.1f}x",
        str(record["seeds"]),
    ]


def _seconds(value: float) -> str:
    """Two significant digits below a second, so that a ratio reads back from its cells
    (LightGBM's 0.12 s shown as 0.1 would make 387x look like 461x)."""
    return f"{value:.2g}" if value < 1 else f"{value:.1f}"


_PAIRED_HEADER = [
    "dataset",
    "model",
    "best baseline",
    "model mean",
    "baseline mean",
    "difference",
    f"{CONFIDENCE:.0%} interval",
    "seeds won",
]


def _paired_cells(record: dict[str, Any]) -> list[str]:
    reference = record.get("best_baseline", record.get("default"))
    interval = _interval(record["ci_low"], record["ci_high"])
    return [
        record["dataset"],
        record["model"],
        reference,
        f"{record['model_mean']:.4f}",
        f"{record['baseline_mean']:.4f}",
        f"{record['mean_difference']:+.4f}",
        interval,
        f"{record['seeds_won']}/{record['seeds']}",
    ]


def _interval(low: float, high: float) -> str:
    return "n/a (one seed)" if np.isnan(low) else f"[{low:+.4f}, {high:+.4f}]"


def _seeds(row: dict[str, Any]) -> str:
    failed = f" ({row['seeds_failed']} failed)" if row["seeds_failed"] else ""
    return f"{row['seeds_ok']}{failed}"


def _mean_std(row: dict[str, Any], name: str, style: str) -> str:
    mean = row.get(f"{name}_mean", float("nan"))
    std = row.get(f"{name}_std", float("nan"))
    if pd.isna(mean):
        return "–"
    if pd.isna(std):
        return style.format(mean)
    return f"{style.format(mean)} ± {style.format(std)}"


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
