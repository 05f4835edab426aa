from __future__ import annotations

import lightning as L
import pytest
from lightning.pytorch.loggers import TensorBoardLogger

from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.networks import NetworkSettings
from lightning_modules.progress import StridedRichProgressBar


class RecordingBar(StridedRichProgressBar):
    """The strided bar, noting which training batch counts reached the bar."""

    def __init__(self) -> None:
        super().__init__(every_n_batches=3)
        self.shown: list[int] = []

    def _update(self, progress_bar_id, current, visible=True, hard=False) -> None:
        if progress_bar_id is not None and progress_bar_id == self.train_progress_bar_id:
            self.shown.append(current)
        super()._update(progress_bar_id, current, visible, hard)


def test_the_bar_moves_every_n_batches_and_after_the_epochs_last(tmp_path):
    bar = RecordingBar()
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        callbacks=[bar],
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    # 1,500 rows: 960 training rows, batch 128: 8 batches.
    dm = LoanDataModule(
        None, target="default", id_column="loan_id", synthetic_rows=1500, batch_size=128
    )
    trainer.fit(LoanDefaultModel(net=NetworkSettings(hidden_sizes=[16])), datamodule=dm)
    assert trainer.num_training_batches == 8
    assert [count for count in bar.shown if count < 8] == [3, 6]
    assert bar.shown[-1] == 8


def test_a_stride_below_one_is_refused():
    with pytest.raises(ValueError, match="every_n_batches"):
        StridedRichProgressBar(every_n_batches=0)


@pytest.mark.parametrize(("version", "shown"), [("version_0/fold_7", "fold_7"), (3, "3")])
def test_the_bar_names_the_version_as_written(tmp_path, version, shown):
    bar = StridedRichProgressBar()
    logger = TensorBoardLogger(tmp_path, name="loans", version=version)
    trainer = L.Trainer(logger=logger, callbacks=[bar], enable_checkpointing=False)
    assert bar.get_metrics(trainer, LoanDefaultModel())["v_num"] == shown
