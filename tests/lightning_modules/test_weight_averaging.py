"""The moving average of the weights: what validation scores, what training continues from,
what a checkpoint holds."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from contracts.errors import ConfigurationError
from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.weight_averaging import WeightMovingAverage

# 1,500 synthetic rows: 4 training batches of 256 an epoch.
ROWS = 1_500
HALF_LIFE = 0.5


class _WeightRecorder(L.Callback):
    """The trainable weights after every training step, at the first step of each epoch and
    as validation sees them (after every callback's `on_validation_epoch_start`)."""

    def __init__(self) -> None:
        self.trained: list[list[torch.Tensor]] = []
        self.epoch_starts: list[list[torch.Tensor]] = []
        self.validated: list[list[torch.Tensor]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.epoch_starts.append(_weights(pl_module))

    def on_train_batch_end(self, trainer, pl_module, *_) -> None:
        self.trained.append(_weights(pl_module))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *_) -> None:
        if batch_idx == 0 and not trainer.sanity_checking:
            self.validated.append(_weights(pl_module))


def _weights(pl_module: L.LightningModule) -> list[torch.Tensor]:
    return [p.detach().clone() for p in pl_module.parameters() if p.requires_grad]


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """Two epochs of the default model, recorded; the best checkpoint's weights."""
    root = tmp_path_factory.mktemp("averaged")
    recorder = _WeightRecorder()
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=root, monitor="val/roc_auc", mode="max"
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder, checkpoint],
    )
    L.seed_everything(0)
    model = LoanDefaultModel(weight_average_half_life=HALF_LIFE)
    trainer.fit(model, datamodule=LoanDataModule(synthetic_rows=ROWS, id_column="loan_id"))
    saved = torch.load(checkpoint.best_model_path, weights_only=True, map_location="cpu")
    return recorder, trainer.num_training_batches, model, saved["state_dict"]


def test_validation_scores_the_moving_average_of_every_steps_weights(two_epochs):
    recorder, steps_per_epoch, _, _ = two_epochs
    decay = 0.5 ** (1 / (HALF_LIFE * steps_per_epoch))
    average = recorder.trained[0]
    expected = []
    for step, weights in enumerate(recorder.trained[1:], start=2):
        average = [a + (1 - decay) * (w - a) for a, w in zip(average, weights, strict=True)]
        if step % steps_per_epoch == 0:
            expected.append(average)
    assert len(recorder.validated) == len(expected) == 2
    for seen, wanted in zip(recorder.validated, expected, strict=True):
        for tensor, reference in zip(seen, wanted, strict=True):
            torch.testing.assert_close(tensor, reference)
    # ... and is not simply the last step's weights.
    assert not torch.equal(recorder.validated[0][0], recorder.trained[steps_per_epoch - 1][0])


def test_training_continues_from_the_last_steps_weights_not_the_average(two_epochs):
    recorder, steps_per_epoch, _, _ = two_epochs
    last_of_first_epoch = recorder.trained[steps_per_epoch - 1]
    for tensor, reference in zip(recorder.epoch_starts[1], last_of_first_epoch, strict=True):
        assert torch.equal(tensor, reference)


def test_the_checkpoint_and_the_fitted_model_hold_the_average(two_epochs):
    recorder, _, model, state = two_epochs
    final_average = recorder.validated[-1]
    assert all(torch.equal(a, b) for a, b in zip(_weights(model), final_average, strict=True))
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    best = [state[name] for name in names]
    assert any(
        all(torch.equal(a, b) for a, b in zip(best, seen, strict=True))
        for seen in recorder.validated
    )


def test_a_half_life_must_be_positive():
    with pytest.raises(ConfigurationError, match="weight_average_half_life"):
        LoanDefaultModel(weight_average_half_life=0.0)
    with pytest.raises(ConfigurationError, match="half_life_epochs"):
        WeightMovingAverage(-1.0)


def test_null_trains_without_an_average():
    assert LoanDefaultModel(weight_average_half_life=None).configure_callbacks() == []
