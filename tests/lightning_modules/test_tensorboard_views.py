"""TensorBoard views, read back from the event files with TensorBoard's own reader."""

from __future__ import annotations

import io
import math

import lightning as L
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import torch
import torchmetrics.functional.classification as tmf
from google.protobuf import text_format
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.plugins.projector import projector_config_pb2

from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.cli import cli_main
from lightning_modules.evaluation_figures import (
    confusion_figure,
    ks_figure,
    reliability_bins,
    reliability_figure,
    roc_figure,
)
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.metrics import binary_report
from lightning_modules.networks import NetworkSettings
from lightning_modules.tensorboard_views import (
    METADATA_HEADER,
    TensorBoardViews,
    embedding_metadata,
    metric_tags,
)
from tests.conftest import CONFIGS, FAST_TRAINER
from tests.helpers.tensorboard import VALIDATION_FIGURES, read_events


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One CLI fit of the default config on 2,000 synthetic rows, then test in the same run,
    as the benchmark does; and the categorical embeddings at the end of the fit (test then
    loads the best epoch's)."""
    root = tmp_path_factory.mktemp("tensorboard")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        cli = cli_main(
            [
                "fit",
                f"--config={CONFIGS / 'default.yaml'}",
                "--data.synthetic_rows=2000",
                *FAST_TRAINER,
                "--trainer.max_epochs=3",
                "--model.lr_schedule=cosine",  # auto is constant on so few rows
            ]
        )
        fitted = [table.detach().clone() for table in cli.model.categorical_embedding_weights()]
        cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path="best")
    run_dir = root / "logs" / "default" / "version_0"
    return cli, run_dir, read_events(run_dir), fitted


@pytest.mark.slow
def test_every_stage_logs_loss_metrics_and_learning_rate(run):
    cli, _, events, _ = run
    scalars = set(events.Tags()["scalars"])
    report = binary_report(torch.tensor([0.2, 0.8]), torch.tensor([0.0, 1.0]), 0.5)
    for stage in ("val", "test"):
        assert {f"{stage}/loss", *(f"{stage}/{name}" for name in report)} <= scalars
    assert {"train/loss_step", "train/loss_epoch", "train/roc_auc", "train/accuracy"} <= scalars
    # The cosine over the fit's steps, read on the steps the logger writes (every 5th).
    total = cli.trainer.global_step
    points = events.Scalars("lr-AdamW")
    assert [point.step for point in points] == list(range(4, total, 5))
    expected = [1e-3 * 0.5 * (1 + math.cos(math.pi * point.step / total)) for point in points]
    assert [point.value for point in points] == pytest.approx(expected, rel=1e-5)
    val_auc = [point.value for point in events.Scalars("val/roc_auc")]
    assert len(val_auc) == 3 and all(0.6 < value <= 1 for value in val_auc)
    (test_auc,) = events.Scalars("test/roc_auc")
    assert test_auc.value == pytest.approx(float(cli.trainer.callback_metrics["test/roc_auc"]))


@pytest.mark.slow
def test_validation_curves_are_images_and_a_native_pr_curve(run):
    cli, _, events, _ = run
    test_figures = {tag.replace("val/", "test/") for tag in VALIDATION_FIGURES}
    assert set(events.Tags()["images"]) == VALIDATION_FIGURES | test_figures
    for tag in [*VALIDATION_FIGURES, *test_figures]:
        (image,) = events.Images(tag)  # 3 epochs, every 5: drawn once, after the last epoch
        assert image.step == cli.trainer.global_step
        pixels = matplotlib.image.imread(io.BytesIO(image.encoded_image_string), format="png")
        assert pixels.shape[0] == image.height > 100 and pixels.std() > 0
    assert {"val/pr_curve", "test/pr_curve"} <= set(events.Tags()["tensors"])
    assert set(events.PluginTagToContent("pr_curves")) == {"val/pr_curve", "test/pr_curve"}


@pytest.mark.slow
def test_hparams_hold_model_data_and_optimiser_settings_and_every_metric(run):
    cli, _, events, _ = run
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]
    ).experiment
    declared = [info.name.tag for info in experiment.metric_infos]
    assert declared == metric_tags()
    assert set(declared) <= set(events.Tags()["scalars"])  # each has a value to show
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    hparams = dict(start.hparams)
    assert hparams["data/synthetic_rows"].number_value == 2000
    # `auto` as the data resolved it: 1,280 training rows take batches of 256, one network.
    assert hparams["data/batch_size"].number_value == 256
    assert hparams["data/folds"].number_value == 1
    # `training_epochs: auto` as the fit resolved it: no more than the trainer's 3 epochs.
    assert hparams["training_epochs"].number_value == 3
    assert hparams["lr_schedule"].string_value == "cosine"
    assert hparams["data/seed"].number_value == 0
    assert hparams["data/target"].string_value == "default"
    assert hparams["optimizer/lr"].number_value == pytest.approx(1e-3)
    # The values the network was built with: `auto` resolved for 2,000 rows' training split.
    assert hparams["net/hidden_sizes"].string_value == "[128, 128, 128]"
    assert hparams["net/numeric_embedding"].string_value == "piecewise"
    assert hparams["inputs/n_numeric"].number_value == cli.datamodule.feature_spec.n_numeric
    assert hparams["seed_everything"].string_value == "0"
    assert not any(name.startswith(("_", "data/predict_")) for name in hparams)


@pytest.mark.slow
def test_projector_shows_each_categorical_embedding_with_its_levels(run):
    cli, run_dir, _, fitted = run
    config = text_format.Parse(
        (run_dir / "projector_config.pbtxt").read_text(), projector_config_pb2.ProjectorConfig()
    )
    preprocessor = cli.datamodule.preprocessor
    columns = list(preprocessor.categorical_columns)
    assert [e.tensor_name.split(":")[0] for e in config.embeddings] == columns
    train_rows = len(cli.datamodule.labelled_table().split.train)
    for embedding, weight in zip(config.embeddings, fitted, strict=True):
        column = embedding.tensor_name.split(":")[0]
        tensors = np.loadtxt(run_dir / embedding.tensor_path, delimiter="\t", ndmin=2)
        np.testing.assert_allclose(tensors, weight.numpy(), rtol=1e-6)
        metadata = pd.read_csv(
            run_dir / embedding.metadata_path, sep="\t", keep_default_na=False, dtype=str
        )
        assert list(metadata.columns) == METADATA_HEADER
        levels = preprocessor.vocabularies_[column]
        assert metadata["level"].tolist() == ["<missing>", "<unknown>", *levels]
        assert metadata["train_rows"].astype(int).sum() == train_rows


def _fit_tiny_model(logger, views: TensorBoardViews, max_epochs: int) -> None:
    """A 16-unit network on 1,500 synthetic rows: 960 training rows, 4 steps an epoch."""
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        logger=logger,
        callbacks=[views],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    dm = LoanDataModule(None, target="default", id_column="loan_id", synthetic_rows=1500)
    trainer.fit(LoanDefaultModel(net=NetworkSettings(hidden_sizes=[16])), datamodule=dm)


@pytest.mark.slow
def test_curves_follow_every_n_epochs_and_a_trainer_without_tensorboard_is_fine(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="run", default_hp_metric=False)
    _fit_tiny_model(logger, TensorBoardViews(every_n_epochs=1), max_epochs=2)
    events = read_events(tmp_path / "run" / "version_0")
    # Drawn after each epoch, at the global step.
    assert [image.step for image in events.Images("val/roc_curve")] == [4, 8]
    _fit_tiny_model(False, TensorBoardViews(every_n_epochs=1), max_epochs=2)


@pytest.mark.parametrize(("max_epochs", "steps"), [(3, [12]), (5, [8, 20])])
def test_a_periodic_drawing_is_skipped_when_the_fit_ends_sooner(tmp_path, max_epochs, steps):
    """Every 2 epochs: a drawing at epoch 2 of 3 would be followed by the end-of-fit one an
    epoch later, so only that one is drawn; of 5, epoch 4's is skipped."""
    logger = TensorBoardLogger(tmp_path, name="run", default_hp_metric=False)
    views = TensorBoardViews(every_n_epochs=2, embeddings=False)
    _fit_tiny_model(logger, views, max_epochs=max_epochs)
    events = read_events(tmp_path / "run" / "version_0")
    assert [image.step for image in events.Images("val/roc_curve")] == steps


def test_reliability_bins_average_to_the_protocols_calibration_error():
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(5_000, generator=generator) ** 2
    targets = (torch.rand(5_000, generator=generator) < probs * 0.8).float()
    predicted, observed, counts = reliability_bins(probs, targets, 15)
    assert counts.sum() == 5_000
    present = counts > 0
    gap = (counts[present] * (predicted - observed)[present].abs()).sum() / counts.sum()
    expected = tmf.binary_calibration_error(probs, targets.long(), n_bins=15)
    assert float(gap) == pytest.approx(float(expected), abs=1e-6)
    assert torch.isnan(reliability_bins(torch.tensor([0.05]), torch.tensor([1.0]), 4)[0][1:]).all()


def test_confusion_figure_writes_the_counts_at_the_threshold():
    probs = torch.tensor([0.1, 0.4, 0.6, 0.9, 0.45, 0.7])
    targets = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    figure = confusion_figure(probs, targets, threshold=0.5, rows="test")
    cells = [text.get_text().split("\n")[0] for text in figure.axes[0].texts]
    assert cells == ["2", "1", "1", "2"]  # TN, FP, FN, TP
    assert figure.axes[0].get_title() == "Confusion, test, threshold 0.500"


def test_roc_figure_marks_the_operating_point_at_the_threshold():
    probs = torch.tensor([0.1, 0.4, 0.6, 0.9, 0.45, 0.7])
    targets = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    (axes,) = roc_figure(probs, targets, threshold=0.5, rows="out-of-fold").axes
    assert axes.get_title().startswith("ROC, out-of-fold (AUC")
    point = axes.lines[-1]  # at 0.5: 1 of 3 non-defaulters above it, 2 of 3 defaulters
    assert point.get_xdata()[0] == pytest.approx(1 / 3) and point.get_ydata()[0] == pytest.approx(
        2 / 3
    )


def test_reliability_histogram_labels_only_its_decades():
    """Minor-tick labels (2x10^3, 3x10^3...) overlapped on a large validation set."""
    probs = torch.rand(20_000, generator=torch.Generator().manual_seed(0)) ** 3
    figure = reliability_figure(probs, (probs > 0.5).float(), rows="validation")
    figure.canvas.draw()
    histogram = figure.axes[1]
    assert not any(label.get_text() for label in histogram.yaxis.get_minorticklabels())


def test_ks_figure_marks_the_statistic_where_it_is_reached():
    probs = torch.tensor([0.9, 0.8, 0.7, 0.4, 0.3, 0.2])
    targets = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    (axes,) = ks_figure(probs, targets, rows="validation").axes
    assert axes.get_title() == "KS chart, validation (KS 0.6667)"
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["defaulters", "non-defaulters", "KS at p >= 0.800"]


def test_embedding_metadata_counts_rows_and_defaults_per_code():
    codes = torch.tensor([2, 2, 3, 0, 2])
    targets = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    rows = embedding_metadata(["<missing>", "<unknown>", "a\tb", "c"], codes, targets)
    assert rows == [
        ["<missing>", "1", "0.0000"],
        ["<unknown>", "0", ""],
        ["a b", "3", "0.3333"],
        ["c", "1", "1.0000"],
    ]


@pytest.mark.slow
def test_a_separate_test_run_gets_its_own_hparams_and_test_metrics(run, monkeypatch):
    _, run_dir, _, _ = run
    monkeypatch.chdir(run_dir.parents[2])
    best = next((run_dir / "checkpoints").glob("epoch*.ckpt"))
    cli_main(
        [
            "test",
            f"--config={CONFIGS / 'default.yaml'}",
            "--data.synthetic_rows=2000",
            *FAST_TRAINER,
            f"--ckpt_path={best}",
        ]
    )
    events = read_events(run_dir.parent / "version_1")
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info
    assert start.hparams["data/synthetic_rows"].number_value == 2000
    assert start.hparams["ckpt_path"].string_value == str(best)
    # Testing builds no optimiser and resolves no `auto`: the checkpoint's fit recorded them.
    assert start.hparams["optimizer/lr"].number_value == pytest.approx(1e-3)
    assert start.hparams["lr_schedule"].string_value != "auto"
    # TensorBoard takes the columns from whichever run it reads first: the fit's and the
    # test's declare the same ones, so neither hides the other's optimiser or checkpoint.
    declared = [
        {
            info.name
            for info in plugin_data_pb2.HParamsPluginData.FromString(
                read_events(folder).PluginTagToContent("hparams")["_hparams_/experiment"]
            ).experiment.hparam_infos
        }
        for folder in (run_dir, run_dir.parent / "version_1")
    ]
    assert declared[0] == declared[1]
    assert {"ckpt_path", "optimizer/lr"} <= declared[0]
    assert 0.6 < events.Scalars("test/roc_auc")[0].value <= 1
