"""The EDA report: a `DatasetProfile` drawn as one self-contained HTML file and a Rich summary.

Figures are built with matplotlib's object API on Agg canvases (no pyplot state, no
display needed) and embedded as base64 PNGs, so the report is one file that can be
mailed or attached to a ticket.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from analysis.profiling import DatasetProfile, Finding
from contracts.errors import ConfigurationError
from contracts.wording import counted
from lightning_modules.atomic import write_text_atomically

REPORT_NAME = "report.html"
MAX_PANELS = 48
PANEL_COLUMNS = 4
DPI = 80
CLASS_COLOURS = ("#4c72b0", "#dd8452")  # non-defaulters, defaulters
CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f0f0; }
li.finding { margin: 0.3em 0; }
.kind { font-weight: bold; text-transform: uppercase; font-size: 0.8em; color: #a33; }
img { max-width: 100%; }
"""


def write_report(profile: DatasetProfile, output_dir: Path) -> Path:
    """Render the report into `output_dir/report.html` (whole or not at all) and return its
    path; a folder that cannot hold it is named in one message."""
    try:
        return write_text_atomically(render_html(profile), output_dir / REPORT_NAME)
    except OSError as error:
        raise ConfigurationError(
            f"--output {output_dir}: the report cannot be written there ({error.strerror or error})"
        ) from error


def render_html(profile: DatasetProfile) -> str:
    sections = [
        _overview_section(profile),
        _findings_section(profile.findings),
        _columns_section(profile),
        _section("Missing values per column", _image(missing_figure(profile))),
        _ranking_section(profile),
        _section(
            "Numeric distributions by target",
            "<p>Share of each class's present values per bin (1st-99th percentile range; "
            "values beyond it are counted in the end bins). Ordered by univariate ROC-AUC.</p>"
            + _image(distributions_figure(profile)),
        )
        if profile.numeric
        else "",
        _categorical_section(profile) if profile.categorical else "",
        _section(
            "Spearman correlation among numeric features",
            "<p>Rank correlation on pairwise complete rows.</p>"
            + _image(correlation_figure(profile)),
        )
        if len(profile.numeric) > 1
        else "",
    ]
    title = f"EDA: {html.escape(profile.source)}"
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{CSS}</style></head><body><h1>{title}</h1>\n" + "\n".join(sections)
    ) + "\n</body></html>\n"


def print_summary(profile: DatasetProfile, report: Path, console: Console | None = None) -> None:
    """A short terminal summary: size, target balance, strongest features, warnings."""
    console = console or Console()
    numeric = sum(info.role == "numeric" for info in profile.columns)
    categorical = sum(info.role == "categorical" for info in profile.columns)
    overview = Table(title=f"EDA of {profile.source} ({profile.rows_used} labelled rows)")
    overview.add_column("")
    overview.add_column("value", justify="right")
    overview.add_row("rows", f"{profile.n_rows:,}")
    overview.add_row("features", f"{numeric} numeric, {categorical} categorical")
    overview.add_row(
        f"target {profile.target} = {profile.positive_label}",
        f"{profile.positives:,} ({profile.positive_rate:.2%})",
    )
    overview.add_row("duplicate rows", f"{profile.duplicate_rows:,}")
    console.print(overview)
    ranking = Table(title="Strongest single features")
    for name in ("feature", "ROC-AUC", "MI (bits)", "direction"):
        ranking.add_column(name, justify="left" if name in ("feature", "direction") else "right")
    for signal in profile.signals[:5]:
        ranking.add_row(
            signal.name,
            _score_text(signal.roc_auc),
            f"{signal.mutual_information:.4f}",
            signal.direction,
        )
    console.print(ranking)
    by_kind: dict[str, list[str]] = {}
    for finding in profile.findings:
        by_kind.setdefault(finding.kind, []).append(", ".join(finding.columns) or "(whole table)")
    warnings = Table(title=f"{len(profile.findings)} warnings (details in the report)")
    kinds = {kind: f"{kind} ({len(columns)})" for kind, columns in by_kind.items()}
    warnings.add_column("kind", no_wrap=True, min_width=max(map(len, kinds.values()), default=4))
    warnings.add_column("columns")
    for kind, columns in by_kind.items():
        warnings.add_row(kinds[kind], "; ".join(columns))
    console.print(warnings)
    console.print(f"report: {report}")


# Figures --------------------------------------------------------------------------------


def missing_figure(profile: DatasetProfile) -> Figure:
    """Horizontal bars of the missing share of every column that has missing values."""
    gaps = [info for info in profile.columns if info.missing]
    figure = _figure(7, 0.8 + 0.28 * max(len(gaps), 1))
    axes = figure.add_subplot()
    if not gaps:
        axes.text(0.5, 0.5, "no missing values", ha="center", va="center")
        axes.set_axis_off()
        return figure
    shares = [info.missing / profile.n_rows for info in gaps]
    bars = axes.barh([info.name for info in gaps], shares, color="#8172b3")
    axes.bar_label(bars, labels=[f"{info.missing:,}" for info in gaps], padding=3, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, min(1.0, max(shares) * 1.25))
    axes.set_xlabel("share of rows missing (label: count)")
    return figure


def _score_text(roc_auc: float) -> str:
    """A feature's ROC-AUC, or a dash for one with no value, or one value, to rank by."""
    return "–" if np.isnan(roc_auc) else f"{roc_auc:.3f}"


def ranking_figure(profile: DatasetProfile) -> Figure:
    """Univariate ROC-AUC per feature, best first (features with no score left out)."""
    signals = [s for s in profile.signals if not np.isnan(s.roc_auc)][:MAX_PANELS]
    figure = _figure(7, 0.8 + 0.25 * len(signals))
    axes = figure.add_subplot()
    colours = ["#55a868" if s.role == "categorical" else "#4c72b0" for s in signals]
    axes.barh(
        [s.name for s in signals], [s.roc_auc - 0.5 for s in signals], left=0.5, color=colours
    )
    axes.invert_yaxis()
    scores = [s.roc_auc for s in signals]
    # A categorical's out-of-fold score falls a little below 0.5 where it holds no signal.
    axes.set_xlim(
        min(0.5, min(scores, default=0.5) - 0.02), max(0.75, max(scores, default=0.5) + 0.02)
    )
    axes.set_xlabel("ROC-AUC of the feature alone (blue numeric, green categorical)")
    return figure


def distributions_figure(profile: DatasetProfile) -> Figure:
    """Small multiples: each numeric feature's histogram, one step line per class."""
    order = {signal.name: rank for rank, signal in enumerate(profile.signals)}
    panels = sorted(profile.numeric, key=lambda d: order.get(d.name, len(order)))[:MAX_PANELS]
    figure, grid = _grid(len(panels), height=2.1)
    for axes, dist in zip(grid, panels, strict=False):
        axes.set_title(dist.name, fontsize=9)
        axes.set_yticks([])
        if not dist.counts.any():
            axes.set_xticks([])
            axes.text(0.5, 0.5, "no value in any row", ha="center", va="center", fontsize=8)
            continue
        totals = np.maximum(dist.counts.sum(axis=1, keepdims=True), 1)
        for label, name in ((0, "no default"), (1, "default")):
            axes.stairs(
                dist.counts[label] / totals[label],
                dist.edges,
                color=CLASS_COLOURS[label],
                label=name,
                fill=label == 0,
                alpha=0.45 if label == 0 else 1.0,
                linewidth=1.4,
            )
        axes.tick_params(labelsize=7)
    if panels:
        grid[0].legend(fontsize=7)
    return figure


def categorical_figure(profile: DatasetProfile) -> Figure:
    """Default rate per level with its Wilson interval; dashed line: the overall rate."""
    panels = profile.categorical[:MAX_PANELS]
    tallest = max((len(rates.levels) for rates in panels), default=1)
    figure, grid = _grid(len(panels), height=0.6 + 0.22 * tallest, columns=3)
    for axes, rates in zip(grid, panels, strict=False):
        positions = np.arange(len(rates.levels))
        errors = np.vstack([rates.rates - rates.ci_low, rates.ci_high - rates.rates])
        axes.barh(positions, rates.rates, xerr=errors, color="#dd8452", alpha=0.8, capsize=2)
        axes.set_yticks(
            positions,
            [
                f"{level} ({count:,})"
                for level, count in zip(rates.levels, rates.counts, strict=True)
            ],
        )
        axes.invert_yaxis()
        axes.axvline(profile.positive_rate, color="#333", linestyle="--", linewidth=1)
        axes.set_title(rates.column, fontsize=9)
        axes.tick_params(labelsize=7)
        axes.set_xlim(0, min(1.0, float(rates.ci_high.max()) * 1.1 + 0.02))
    return figure


def correlation_figure(profile: DatasetProfile) -> Figure:
    """Spearman heatmap; values are written in the cells when there are few columns."""
    matrix = profile.spearman.to_numpy()
    names = list(profile.spearman.columns)
    size = min(14.0, 2.5 + 0.42 * len(names))
    figure = _figure(size + 1.5, size)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=90, fontsize=7)
    axes.set_yticks(ticks, names, fontsize=7)
    if len(names) <= 20:
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                colour = "white" if abs(value) > 0.6 else "black"
                axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color=colour)
    figure.colorbar(image, ax=axes, shrink=0.8, label="Spearman ρ")
    return figure


def target_figure(profile: DatasetProfile) -> Figure:
    """Default rate of the described rows and, for all rows, of each protocol split."""
    counts = {f"{profile.rows_used} rows": (profile.n_rows, profile.positives)}
    if profile.rows_used == "all":
        counts |= profile.split_balance
    figure = _figure(6, 0.6 + 0.45 * len(counts))
    axes = figure.add_subplot()
    rates = [positives / rows for rows, positives in counts.values()]
    bars = axes.barh(list(counts), rates, color=CLASS_COLOURS[1])
    labels = [
        f"{rate:.2%} of {rows:,}" for rate, (rows, _) in zip(rates, counts.values(), strict=True)
    ]
    axes.bar_label(bars, labels=labels, padding=3, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, min(1.0, max(rates) * 1.4))
    axes.set_xlabel(f"share with {profile.target} = {profile.positive_label}")
    return figure


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes, drawn by the Agg canvas, grown to hold every label: the
    constrained layout alone clipped long tick labels (taiwan's heatmap, gmsc's ranking)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", pad_inches=0.05)
    return buffer.getvalue()


# HTML pieces ----------------------------------------------------------------------------


def _overview_section(profile: DatasetProfile) -> str:
    numeric = sum(info.role == "numeric" for info in profile.columns)
    categorical = sum(info.role == "categorical" for info in profile.columns)
    described = (
        "every labelled row (train, validation and test together)"
        if profile.rows_used == "all"
        else "the training split only (seed's protocol split)"
    )
    rows = [
        ("rows described", f"{profile.n_rows:,}: {described}"),
        ("features", f"{numeric} numeric, {categorical} categorical"),
        ("target", f"{profile.target} (positive = {profile.positive_label})"),
        ("defaulters", f"{profile.positives:,} ({profile.positive_rate:.2%})"),
        ("duplicate rows", f"{profile.duplicate_rows:,}"),
    ]
    return _section(
        "Overview and target balance",
        _table(None, rows) + _image(target_figure(profile)),
    )


def _findings_section(findings: Sequence[Finding]) -> str:
    if not findings:
        return _section("Warnings", "<p>None.</p>")
    items = "".join(
        f"<li class='finding'><span class='kind'>{html.escape(f.kind)}</span> "
        f"{html.escape(f.message)}</li>"
        for f in findings
    )
    return _section(f"Warnings ({len(findings)})", f"<ul>{items}</ul>")


def _columns_section(profile: DatasetProfile) -> str:
    numeric = {dist.name: dist for dist in profile.numeric}
    rows = []
    for info in profile.columns:
        dist = numeric.get(info.name)
        stats = (
            [f"{dist.mean:.4g}", *(f"{dist.quantiles[q]:.4g}" for q in ("min", "median", "max"))]
            if dist
            else ["", "", "", ""]
        )
        rows.append(
            (
                info.name,
                info.role,
                info.dtype,
                f"{info.missing:,} ({info.missing / profile.n_rows:.1%})",
                f"{info.distinct:,}",
                *stats,
            )
        )
    header = ("column", "role", "dtype", "missing", "distinct", "mean", "min", "median", "max")
    return _section("Columns as the schema sees them", _table(header, rows))


def _ranking_section(profile: DatasetProfile) -> str:
    rows = [
        (
            s.name,
            s.role,
            _score_text(s.roc_auc),
            f"{s.mutual_information:.4f}",
            s.direction,
            f"{s.coverage:.1%}",
        )
        for s in profile.signals
    ]
    header = ("feature", "role", "ROC-AUC alone", "MI (bits)", "direction", "present")
    note = (
        "<p>ROC-AUC of each feature used alone as a score, direction-agnostic (max(AUC, 1 − AUC)): "
        "numeric values on the rows where present, categoricals through their levels' default "
        "rates computed out of fold (5 folds; a level no other fold holds scores the overall "
        "rate), so that levels of a few rows each rank nothing: such a column scores about "
        "0.5, or a little below. Mutual information with the target bins numeric values into "
        "20 quantile bins plus a missing bin; a categorical's is in-sample, so it grows with "
        "its number of levels.</p>"
    )
    return _section(
        "Single-feature ranking", note + _image(ranking_figure(profile)) + _table(header, rows)
    )


def _categorical_section(profile: DatasetProfile) -> str:
    tables = []
    for rates in profile.categorical:
        rows = [
            (level, f"{count:,}", f"{rate:.2%}", f"[{low:.2%}, {high:.2%}]")
            for level, count, rate, low, high in zip(
                rates.levels, rates.counts, rates.rates, rates.ci_low, rates.ci_high, strict=True
            )
        ]
        tables.append(
            f"<h3>{html.escape(rates.column)} ({counted(rates.n_levels, 'level')})</h3>"
            + _table(("level", "rows", "default rate", "95% Wilson interval"), rows)
        )
    return _section(
        "Default rate by categorical level",
        "<p>Bars: default rate with its 95% Wilson interval; dashed: the overall rate.</p>"
        + _image(categorical_figure(profile))
        + "".join(tables),
    )


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>\n{body}</section>"


def _table(header: Sequence[str] | None, rows: Iterable[Sequence[str]]) -> str:
    """An HTML table; header None for a two-column key/value table."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header or ())
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table>{'<tr>' + head + '</tr>' if head else ''}{body}</table>"


def _image(figure: Figure) -> str:
    encoded = base64.b64encode(figure_png(figure)).decode("ascii")
    return f"<img alt='figure' src='data:image/png;base64,{encoded}'>"


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _grid(n_panels: int, *, height: float, columns: int = PANEL_COLUMNS) -> tuple[Figure, list]:
    """A figure with one axes per panel, `columns` per row."""
    columns = max(1, min(columns, n_panels))
    rows = max(1, -(-n_panels // columns))
    figure = _figure(3.4 * columns, height * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for extra in axes[n_panels:]:
        extra.set_axis_off()
    return figure, axes[:n_panels]
