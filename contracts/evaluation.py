"""The model's side of the contract with the callbacks that draw and export what it learned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class EvaluationOutputs:
    """One evaluation's (the last validation epoch's, or the test split's) calibrated
    probabilities, targets and the decision threshold they were scored at.

    Shape: probabilities (n,), targets (n,).
    """

    probabilities: torch.Tensor
    targets: torch.Tensor
    threshold: float


@runtime_checkable
class InspectableModel(Protocol):
    """What the TensorBoard views read from a model."""

    @property
    def validation_outputs(self) -> EvaluationOutputs | None:
        """None before the first validation epoch."""

    @property
    def test_outputs(self) -> EvaluationOutputs | None:
        """None before a test epoch."""

    def categorical_embedding_weights(self) -> list[torch.Tensor]:
        """One (n_codes, dim) table per categorical column, in the data's column order."""
