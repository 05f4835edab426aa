"""Which rows a fit held out, so that `test` and `validate` score those rows and no others.

A checkpoint keeps the fitted preprocessing, not the split: `test` splits the labelled file
again from its own config. With another `seed`, other split sizes or sample options, or a
file that changed since the fit, the "test" rows would include rows the network trained
on, and the score (and the model card and gains table written from it) would be silently
optimistic. The fit records a digest of its validation and test rows' values; a run that
restores the checkpoint onto labelled data compares it before scoring anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from contracts.errors import ConfigurationError
from datamodules.splits import SplitIndices


@dataclass(frozen=True)
class HeldOutRows:
    """A digest of the held-out rows' values and the settings that chose them.

    settings: the data options that decide the split ({"seed": 0, "test_size": 0.2, ...}),
    kept to name the one that differs; the digest decides. all_rows: the same digest over
    every labelled row, training rows included, which a fit continued from a checkpoint
    must find unchanged too (None in checkpoints written before it was kept).
    """

    digest: str
    settings: dict[str, Any]
    all_rows: str | None = None

    def to_state(self) -> dict[str, Any]:
        return {"digest": self.digest, "settings": dict(self.settings), "all_rows": self.all_rows}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HeldOutRows:
        return cls(state["digest"], dict(state["settings"]), state.get("all_rows"))


def held_out_rows(
    frame: pd.DataFrame, columns: Sequence[str], split: SplitIndices, settings: dict[str, Any]
) -> HeldOutRows:
    """The digests of the validation and test rows' values in `columns` (the model's
    features and the target), and of all rows'. Each column is hashed once, and never the
    rows as a whole frame; the held-out digest takes its rows' hashes."""
    sizes = np.array([len(frame), len(split.val), len(split.test)]).tobytes()
    held_out, every_row = hashlib.sha256(sizes), hashlib.sha256(sizes)
    rows = np.concatenate([split.val, split.test])
    for name in columns:
        hashes = pd.util.hash_pandas_object(frame[name], index=False).to_numpy()
        for digest, values in ((held_out, hashes[rows]), (every_row, hashes)):
            digest.update(name.encode())
            digest.update(values.tobytes())
    return HeldOutRows(held_out.hexdigest(), settings, every_row.hexdigest())


def require_same_held_out(fitted: HeldOutRows, current: HeldOutRows, *, source: str) -> None:
    """Refuse to score other held-out rows than the fit's, naming the setting that differs."""
    if fitted.digest == current.digest:
        return
    raise ConfigurationError(
        f"{source}: {_cause(fitted, current, source)}, so this run's validation and test rows "
        "are not the ones the fit held out, and some of them trained the network: its scores "
        "would be too good. Pass the fit's data settings, e.g. its own config: --config "
        "logs/<config name>/version_N/config.yaml."
    )


def require_same_rows(
    fitted: HeldOutRows, current: HeldOutRows, *, source: str, continued: str
) -> None:
    """Refuse to continue a fit (`continued`: its checkpoint, or a bag's fold) on other
    labelled rows than it began on: training rows count too."""
    if fitted.digest == current.digest and fitted.all_rows in (None, current.all_rows):
        return
    raise ConfigurationError(
        f"{continued}: {_cause(fitted, current, source)}, so continuing it would train one "
        "model on two datasets. Start a new fit, or continue on the data it began on: its "
        "file as it was, with its own settings (--config logs/<config name>/version_N/"
        "config.yaml)."
    )


def _cause(fitted: HeldOutRows, current: HeldOutRows, source: str) -> str:
    """The data setting that differs, else the file."""
    changed = [
        f"--data.{name} {fitted.settings[name]} (this run: {current.settings.get(name)})"
        for name in fitted.settings
        if fitted.settings[name] != current.settings.get(name)
    ]
    if changed:
        return "the checkpoint was fitted with " + ", ".join(changed)
    return f"{source} is not the file the checkpoint was fitted on (its rows changed since)"
