"""Stops a diverging fit before a non-finite number reaches the weights or a checkpoint."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from contracts.errors import NonFiniteTrainingError
from lightning_modules.resume import last_epoch_checkpoint


class FiniteGuard(L.Callback):
    """Raises `NonFiniteTrainingError` on a non-finite training loss or non-finite weights.

    The loss is checked before its backward pass, so the step that would spread NaN
    through the network never happens. Checkpoints (written at epoch ends) are checked
    as they are assembled, so a non-finite model is never written over `last.ckpt` and
    the last good checkpoint survives for inspection and prediction. The per-step check
    costs one host-device sync (the progress bar's loss display makes the same one) and,
    with several processes, one all-reduce of a flag.
    """

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        finite = bool(torch.isfinite(loss.detach()).all())
        # Every process stops together: one that stopped alone would leave the others
        # waiting in the gradient all-reduce.
        if not trainer.strategy.reduce_boolean_decision(finite, all=True):
            raise NonFiniteTrainingError(
                f"the training loss is not finite (here: {float(loss.detach().float().mean())})"
                f" at {_position(trainer)}; stopped before the update, so no weights were "
                f"changed by it. {_last_good(trainer)}"
            )

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        bad = [
            name
            for name, tensor in checkpoint["state_dict"].items()
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
        ]
        if bad:
            raise NonFiniteTrainingError(
                f"the weights {bad[:5]} hold NaN or infinity at {_position(trainer)}; the "
                f"checkpoint was not written. {_last_good(trainer)}"
            )


def _position(trainer: L.Trainer) -> str:
    batch = trainer.fit_loop.epoch_loop.batch_idx
    return f"epoch {trainer.current_epoch}, step {trainer.global_step} (batch {batch} of the epoch)"


def _last_good(trainer: L.Trainer) -> str:
    path = last_epoch_checkpoint(trainer)
    advice = (
        "Lower the learning rate (--model.optimizer.init_args.lr), or look for extreme values "
        "in the data (--data.scaling quantile tames heavy tails)."
    )
    if not path:
        return f"No checkpoint was written before this. {advice}"
    return f"The last good checkpoint is {path}. {advice}"
