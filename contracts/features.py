"""The data module's side of the contract with the model and its callbacks.

The model builds its network from a `FeatureSpec`, fits its piecewise-linear bins on the
training split, and the TensorBoard callback labels each categorical code: all through
`FittedTabularData`, which `LoanDataModule` implements, never through the data module's
private fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

Split = Literal["train", "val", "test"]
# Where the `auto` training settings change, agreed by the data module (batch 512 from here,
# ten such batches an epoch, else 256) and the model (the cosine budget from here, else a
# constant rate with early stopping: the budget lost 0.005 on german's 640 rows, BENCHMARKS.md;
# below it an ensemble of 8 members, lightning_modules/networks.py).
SMALL_TRAINING_ROWS = 5_120
# Where the training split holds fewer rows of its rarer class than this, one network's fit
# varies most, and the `auto` settings average: the data module bags five networks, and
# each network is an ensemble of 8 members (lightning_modules/networks.py).
FEW_TRAINING_CASES = 1_500

# A categorical of at least this many training levels is wide. `target_statistics: auto`
# gives it an out-of-fold default rate (on columns of 2-10 levels, every public set's, rates
# did not pay: credit_risk@1k -0.004, taiwan@3k -0.003, german +0.001; on the robustness
# suite's stand-ins of 56 to 4,295 levels they did, +0.002 and +0.008,
# docs/experiments/2026-12-03-target-statistics.md), `folds: auto` bags and `tree_depth:
# auto` puts trees on (lightning_modules/networks.py).
WIDE_CATEGORICAL_LEVELS = 20
# Codes 0 and 1 of every categorical stand for missing and unknown (datamodules/preprocessing.py).
RESERVED_CODES = 2


def is_wide(levels: int) -> bool:
    """Whether a categorical of this many training levels is wide (WIDE_CATEGORICAL_LEVELS):
    the one test behind the rates, the bag and the trees, so that they agree."""
    return levels >= WIDE_CATEGORICAL_LEVELS


def rarer_class_rows(targets: np.ndarray | torch.Tensor) -> int:
    """How many of these 0/1 targets belong to the rarer class (the defaulters, usually)."""
    positives = int(targets.sum())
    return min(positives, len(targets) - positives)


@dataclass(frozen=True)
class FeatureSpec:
    """What the network needs to know about its inputs.

    The numeric block is [real features (and their value counts), missing indicators]: its
    last `n_missing_indicators` columns are 0/1 flags that the network passes through
    unembedded. `cardinalities` counts every code of each categorical, reserved ones included.
    """

    n_numeric: int
    cardinalities: tuple[int, ...]
    positive_rate: float
    n_missing_indicators: int = 0

    @property
    def has_wide_categorical(self) -> bool:
        """Whether a categorical has at least WIDE_CATEGORICAL_LEVELS levels."""
        return any(is_wide(codes - RESERVED_CODES) for codes in self.cardinalities)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as checkpoint hyperparameters must be to load with `weights_only`."""
        return asdict(self) | {"cardinalities": list(self.cardinalities)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FeatureSpec:
        return cls(**(dict(values) | {"cardinalities": tuple(values["cardinalities"])}))


@dataclass(frozen=True)
class TabularTensors:
    """One split as model inputs.

    Shape: numeric (n, n_numeric) float32, categorical (n, n_cat) int32, target (n,) float32.
    """

    numeric: torch.Tensor
    categorical: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return len(self.target)


@runtime_checkable
class FittedTabularData(Protocol):
    """A data module whose preprocessing is fitted (or restored from a checkpoint)."""

    @property
    def feature_spec(self) -> FeatureSpec | None:
        """None until the preprocessing is fitted or restored."""

    def split_tensors(self, split: Split) -> TabularTensors:
        """A labelled split, encoded with the fitted preprocessing."""

    def code_labels(self) -> dict[str, list[str]]:
        """Per categorical column, the label of each code in code order, reserved codes
        (missing, unknown) included."""
