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
    kept to name the one that differs; the digest decides.
    """

    digest: str
    settings: dict[str, Any]

    def to_state(self) -> dict[str, Any]:
        return {"digest": self.digest, "settings": dict(self.settings)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HeldOutRows:
        return cls(state["digest"], dict(state["settings"]))


def held_out_rows(
    frame: pd.DataFrame, columns: Sequence[str], split: SplitIndices, settings: dict[str, Any]
) -> HeldOutRows:
    """The digest of the validation and test rows' values in `columns` (the model's
    features and the target), one column at a time so the rows are never copied as a
    whole frame."""
    rows = np.concatenate([split.val, split.test])
    digest = hashlib.sha256(np.array([len(frame), len(split.val), len(split.test)]).tobytes())
    for name in columns:
        digest.update(name.encode())
        values = pd.util.hash_pandas_object(frame[name].iloc[rows], index=False)
        digest.update(values.to_numpy().tobytes())
    return HeldOutRows(digest.hexdigest(), settings)


def require_same_held_out(fitted: HeldOutRows, current: HeldOutRows, *, source: str) -> None:
    """Refuse to score other held-out rows than the fit's, naming the setting that differs."""
    if fitted.digest == current.digest:
        return
    changed = [
        f"--data.{name} {fitted.settings[name]} (this run: {current.settings.get(name)})"
        for name in fitted.settings
        if fitted.settings[name] != current.settings.get(name)
    ]
    cause = (
        "the checkpoint was fitted with " + ", ".join(changed)
        if changed
        else f"{source} is not the file the checkpoint was fitted on (its rows changed since)"
    )
    raise ConfigurationError(
        f"{source}: {cause}, so this run's validation and test rows are not the ones the fit "
        "held out, and some of them trained the network: its scores would be too good. "
        "Pass the fit's data settings, e.g. its own config: --config "
        "logs/<config name>/version_N/config.yaml."
    )
