"""End-to-end runs of `scripts/main.py` (fit, test, predict) on small synthetic files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tensorboard.plugins.hparams import plugin_data_pb2

from contracts.errors import ConfigurationError
from lightning_modules.callbacks import (
    GAINS_FILE,
    LABEL_COLUMN,
    MODEL_CARD_FILE,
    POINTS_COLUMN,
    PROBABILITY_COLUMN,
)
from lightning_modules.loan_model import LoanDefaultModel
from tests.conftest import CONFIGS, FAST_TRAINER
from tests.helpers.tensorboard import read_events

pytestmark = pytest.mark.slow


def _fit(run_cli, loan_csv: Path, *extra: str):
    return run_cli(
        "fit",
        f"--config={CONFIGS / 'default.yaml'}",
        f"--data.path={loan_csv}",
        *FAST_TRAINER,
        *extra,
    )


def _checkpoints(root: Path) -> tuple[Path, Path]:
    folder = root / "logs" / "default" / "version_0" / "checkpoints"
    best = next(p for p in folder.glob("epoch*.ckpt"))
    return best, folder / "last.ckpt"


@pytest.fixture
def fitted(run_cli, loan_csv, tmp_path):
    cli = _fit(run_cli, loan_csv)
    return cli, *_checkpoints(tmp_path)


def test_fit_writes_logs_checkpoints_and_a_reproducing_config(fitted, run_cli, tmp_path):
    cli, best, last = fitted
    run_dir = tmp_path / "logs" / "default" / "version_0"
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert best.is_file() and last.is_file()
    first = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/")}
    assert 0.6 < first["val/roc_auc"] <= 1.0

    again = run_cli("fit", f"--config={run_dir / 'config.yaml'}")
    second = {
        k: float(v) for k, v in again.trainer.callback_metrics.items() if k.startswith("val/")
    }
    assert second == first


def test_the_fit_prints_the_validation_metrics_of_the_checkpoint_it_keeps(
    run_cli, loan_csv, tmp_path, capsys
):
    cli = _fit(run_cli, loan_csv, "--trainer.max_epochs=4", "--model.training_epochs=4")
    best, _ = _checkpoints(tmp_path)
    epoch = torch.load(best, weights_only=True)["epoch"]
    lines = capsys.readouterr().out.splitlines()
    printed = " ".join(" ".join(lines).split())
    assert f"Validation metrics (epoch {epoch}, the checkpoint kept)" in printed
    # The progress bar's last state stands above the table, not below as the last line.
    assert printed.index("Epoch 3/3") < printed.index("Validation metrics")
    (auc,) = [line.split()[3] for line in lines if line.startswith("│ roc_auc ")]
    assert auc == f"{float(cli.trainer.checkpoint_callback.best_model_score):.4f}"


def test_the_fit_record_keeps_the_trainers_limit_not_the_planned_epochs(
    run_cli, loan_csv, tmp_path
):
    """The fit ends the trainer at its planned epoch; the record names the limit it was given
    (a budget below it was the data's or the config's, not the trainer's)."""
    _fit(run_cli, loan_csv, "--model.training_epochs=1")
    best, _ = _checkpoints(tmp_path)
    record = torch.load(best, weights_only=True)["fit_record"]
    assert (record["training_epochs"], record["trainer/max_epochs"]) == (1, 2)


def test_checkpoint_is_safe_and_self_describing(fitted):
    _, best, _ = fitted
    checkpoint = torch.load(best, weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    state = checkpoint["LoanDataModule"]
    categorical = state["schema"]["categorical_columns"]
    assert {"employment_status", "home_ownership", "loan_purpose", "region"} <= set(categorical)
    inputs = hparams["inputs"]
    assert inputs["n_numeric"] > 0 and len(inputs["cardinalities"]) == len(categorical)
    assert state["schema"]["target"] == "default"
    assert set(state["preprocessor"]["vocabularies"]) == set(state["schema"]["categorical_columns"])
    assert 0.0 < float(checkpoint["state_dict"]["decision_threshold"]) < 1.0
    # The training distributions predict's stability report compares with: every feature's
    # (train rows on fixed bins) and the score's (the saved epoch's validation scores).
    distributions = state["preprocessor"]["distributions"]
    features = [*state["schema"]["numeric_columns"], *categorical]
    assert list(distributions) == features
    train_rows = int(distributions["age"]["counts"].sum())
    assert all(int(bins["counts"].sum()) == train_rows for bins in distributions.values())
    score_counts = checkpoint["state_dict"]["score_counts"]
    assert 0 < int(score_counts.sum()) < train_rows and int(score_counts[-1]) == 0


def test_validate_rescores_the_saved_epoch(fitted, run_cli, loan_csv):
    """A single network's checkpoint validates to the figure its epoch was chosen by (a
    bag's is refused: tests/scripts/test_bagging.py)."""
    cli, best, _ = fitted
    validated = run_cli(
        "validate",
        f"--config={CONFIGS / 'default.yaml'}",
        f"--data.path={loan_csv}",
        f"--ckpt_path={best}",
    )
    chosen = float(cli.trainer.checkpoint_callback.best_model_score)
    assert float(validated.trainer.callback_metrics["val/roc_auc"]) == pytest.approx(
        chosen, abs=1e-6
    )


def test_test_refuses_rows_the_checkpoint_did_not_hold_out(fitted, run_cli, loan_csv, tmp_path):
    """Another seed, or a changed file, splits off other test rows, some of which trained
    the network: scoring them would be silently optimistic."""
    _, best, _ = fitted
    config = [f"--config={CONFIGS / 'default.yaml'}", f"--ckpt_path={best}"]
    with pytest.raises(ConfigurationError, match=r"--data\.seed 0 \(this run: 1\)"):
        run_cli("test", *config, f"--data.path={loan_csv}", "--data.seed=1")
    changed = tmp_path / "changed.csv"
    frame = pd.read_csv(loan_csv)
    frame["age"] += 1  # the same rows and split, other values
    frame.to_csv(changed, index=False)
    with pytest.raises(ConfigurationError, match="not the file the checkpoint was fitted on"):
        run_cli("validate", *config, f"--data.path={changed}")


def test_test_subcommand_reports_held_out_metrics(fitted, run_cli, loan_csv, tmp_path, capsys):
    _, best, _ = fitted
    cli = run_cli(
        "test",
        f"--config={CONFIGS / 'default.yaml'}",
        f"--data.path={loan_csv}",
        f"--ckpt_path={best}",
        "--report.bootstrap_resamples=50",
    )
    metrics = cli.trainer.callback_metrics
    assert 0.6 < float(metrics["test/roc_auc"]) <= 1.0
    assert float(metrics["test/gini"]) == pytest.approx(2 * float(metrics["test/roc_auc"]) - 1)
    assert 0.2 < float(metrics["test/ks"]) < 1.0
    assert float(metrics["test/threshold"]) == pytest.approx(
        float(torch.load(best, weights_only=True)["state_dict"]["decision_threshold"])
    )
    shown = capsys.readouterr().out
    printed = [line.split()[1] for line in shown.splitlines() if "│ " in line]
    assert printed[:4] == ["roc_auc", "gini", "ks", "ks_cutoff"]  # side by side
    assert "DataLoader 0" not in shown  # once, in that order: not Lightning's table again

    run_dir = tmp_path / "logs" / "default" / "version_1"
    start = plugin_data_pb2.HParamsPluginData.FromString(
        read_events(run_dir).PluginTagToContent("hparams")["_hparams_/session_start_info"]
    ).session_start_info
    assert start.hparams["ckpt_path"].string_value == str(best)  # which model it scored
    # The fit's resolved settings and optimiser, from the checkpoint: a test builds neither.
    fit_record = torch.load(best, weights_only=True)["fit_record"]
    assert fit_record["lr_schedule"] in ("cosine", "constant")
    assert fit_record["optimizer/lr"] == pytest.approx(1e-3)
    assert start.hparams["lr_schedule"].string_value == fit_record["lr_schedule"]
    assert start.hparams["optimizer/lr"].number_value == pytest.approx(1e-3)
    gains = pd.read_csv(run_dir / GAINS_FILE)
    assert len(gains) == 10 and gains["rows"].sum() == 400
    assert gains["captured"].iloc[-1] == pytest.approx(1.0)
    card = (run_dir / MODEL_CARD_FILE).read_text()
    test_rate = float(cli.datamodule.split_tensors("test").target.mean())
    assert f"| test | 400 rows, default rate {test_rate:.2%} |" in card
    assert "percentiles of 50 bootstrap resamples" in card
    assert f"| roc_auc | {float(metrics['test/roc_auc']):.4f} | [" in card
    assert "| optimizer/lr | 0.001 |" in card and "| auto |" not in card
    assert "net/periodic_sigma" not in card  # no periodic embedding: the setting did nothing
    epoch = torch.load(best, weights_only=True)["epoch"]
    assert f"The saved weights are those of epoch {epoch} (counted from 0, as in the " in card
    assert "the trainer's limit (`--trainer.max_epochs 2`)" in card


def test_predict_needs_only_the_checkpoint_and_matches_the_reloaded_network(
    fitted, run_cli, loan_csv, loan_frame, tmp_path
):
    _, best, _ = fitted
    unlabelled = tmp_path / "applicants.csv"
    loan_frame.drop(columns=["default"]).head(300).to_csv(unlabelled, index=False)
    loan_csv.unlink()  # everything learned must come from the checkpoint
    output = tmp_path / "out" / "submission.csv"
    cli = run_cli(
        "predict",
        f"--config={CONFIGS / 'default.yaml'}",
        f"--data.path={loan_csv}",
        f"--data.predict_path={unlabelled}",
        f"--ckpt_path={best}",
        f"--submission.output_path={output}",
        "--submission.points=true",
    )
    submission = pd.read_csv(output)
    assert list(submission.columns) == ["loan_id", PROBABILITY_COLUMN, LABEL_COLUMN, POINTS_COLUMN]
    odds = (1 - submission[PROBABILITY_COLUMN]) / submission[PROBABILITY_COLUMN]
    by_hand = 600 + 20 / np.log(2) * np.log(odds / 50)
    assert (submission[POINTS_COLUMN] - by_hand).abs().max() <= 0.5 + 1e-3
    stability = pd.read_csv(tmp_path / "out" / "submission.psi.csv")
    assert stability["variable"].iloc[0] == PROBABILITY_COLUMN
    assert set(stability["variable"]) == {
        PROBABILITY_COLUMN,
        *cli.datamodule.schema.feature_columns,
    }
    assert submission["loan_id"].tolist() == loan_frame["loan_id"].head(300).tolist()
    threshold = float(cli.model.decision_threshold)
    assert (submission[LABEL_COLUMN] == (submission[PROBABILITY_COLUMN] >= threshold)).all()

    checkpoint = torch.load(best, weights_only=True)
    model = LoanDefaultModel(
        **{k: v for k, v in checkpoint["hyper_parameters"].items() if k[0] != "_"}
    )
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    x_num, x_cat, _ = next(iter(cli.datamodule.predict_dataloader()))
    with torch.no_grad():
        reloaded = torch.sigmoid(model(x_num, x_cat)).numpy()
    np.testing.assert_allclose(submission[PROBABILITY_COLUMN], reloaded, rtol=1e-5, atol=1e-6)


def test_own_csv_by_config_alone(run_cli, loan_frame, tmp_path):
    """A user's semicolon-separated file with a text target and "n/a" tokens."""
    frame = loan_frame.copy()
    frame["default"] = frame["default"].map({1: "Charged Off", 0: "Fully Paid"})
    frame["annual_income"] = (
        frame["annual_income"].astype(object).where(frame.index % 50 != 0, "n/a")
    )
    path = tmp_path / "book.csv.gz"
    frame.to_csv(path, sep=";", index=False)
    cli = run_cli(
        "fit",
        f"--config={CONFIGS / 'default.yaml'}",
        f"--data.path={path}",
        "--data.positive_label=Charged Off",
        "--data.read_options.sep=;",
        "--data.read_options.na_values=[n/a]",
        "--data.drop_columns=[region]",
        *FAST_TRAINER,
    )
    schema = cli.datamodule.schema
    assert "region" not in schema.feature_columns and "annual_income" in schema.numeric_columns
    assert "annual_income" in cli.datamodule.preprocessor.indicator_columns_
    assert cli.datamodule.positive_rate == pytest.approx(
        (loan_frame["default"] == 1).mean(), abs=0.02
    )
    # The checkpoint scores "Charged Off": the other label named at `test` is refused, not
    # silently ignored.
    read = ["--data.read_options.sep=;", "--data.read_options.na_values=[n/a]"]
    best = cli.trainer.checkpoint_callback.best_model_path
    with pytest.raises(ConfigurationError, match="fitted with 'Charged Off' as the value"):
        run_cli(
            "test",
            f"--config={CONFIGS / 'default.yaml'}",
            f"--data.path={path}",
            "--data.positive_label=Fully Paid",
            *read,
            f"--ckpt_path={best}",
        )


def test_the_default_label_given_on_purpose_is_checked_too(run_cli, loan_csv, tmp_path):
    """A model of the 0 class, tested with a config file that names 1 (the default)."""
    data = [f"--config={CONFIGS / 'default.yaml'}", f"--data.path={loan_csv}"]
    cli = run_cli("fit", *data, "--data.positive_label=0", *FAST_TRAINER)
    one = tmp_path / "one.yaml"
    one.write_text("data:\n  positive_label: 1\n")
    best = cli.trainer.checkpoint_callback.best_model_path
    with pytest.raises(ConfigurationError, match="fitted with '0' as the value of 'default'"):
        run_cli("test", *data, f"--config={one}", f"--ckpt_path={best}")
    # The same label written another way is the same label.
    tested = run_cli("test", *data, "--data.positive_label=0.0", f"--ckpt_path={best}")
    assert 0.5 < float(tested.trainer.callback_metrics["test/roc_auc"]) <= 1.0
