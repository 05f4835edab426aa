"""Small networks for unit tests: an input description and settings in one call."""

from __future__ import annotations

from typing import Any

from contracts.features import FeatureSpec
from lightning_modules.networks import LoanDefaultNet, NetworkSettings


def small_net(
    n_numeric: int,
    cardinalities: tuple[int, ...] = (),
    *,
    positive_rate: float = 0.5,
    n_missing_indicators: int = 0,
    **settings: Any,
) -> LoanDefaultNet:
    """A `LoanDefaultNet`; `settings` override `NetworkSettings` (raw numerics, one member,
    blocks of 16, ReLU and no tree unless given)."""
    inputs = FeatureSpec(n_numeric, tuple(cardinalities), positive_rate, n_missing_indicators)
    return LoanDefaultNet(
        inputs,
        NetworkSettings(
            **(
                {
                    "numeric_embedding": "none",
                    "ensemble_size": 1,
                    "hidden_sizes": [16],
                    "tree_depth": 0,
                    "n_trees": 1,
                    "activation": "relu",
                }
                | settings
            )
        ),
    )
