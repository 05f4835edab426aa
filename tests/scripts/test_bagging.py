"""A bagged fit (`--data.folds K`) end to end: K fold fits, one averaged checkpoint that
`test` and `predict` use, calibrated on the out-of-fold predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from tensorboard.plugins.hparams import plugin_data_pb2

from contracts.errors import ConfigurationError
from lightning_modules.calibration import fit_temperature, mean_probability_logit
from lightning_modules.callbacks import MODEL_CARD_FILE, PROBABILITY_COLUMN
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.metrics import choose_threshold
from tests.conftest import CONFIGS, FAST_TRAINER
from tests.helpers.tensorboard import VALIDATION_FIGURES, read_events

pytestmark = pytest.mark.slow
FOLDS = 2


def _load(path) -> LoanDefaultModel:
    checkpoint = torch.load(path, weights_only=True)
    model = LoanDefaultModel(
        **{k: v for k, v in checkpoint["hyper_parameters"].items() if k[0] != "_"}
    )
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def test_bagged_fit_averages_its_folds_into_one_checkpoint_that_test_and_predict_use(
    run_cli, loan_csv, loan_frame, tmp_path, capsys
):
    data = [f"--config={CONFIGS / 'default.yaml'}", f"--data.path={loan_csv}"]
    cli = run_cli("fit", *data, *FAST_TRAINER, f"--data.folds={FOLDS}")
    run_dir = tmp_path / "logs" / "default" / "version_0"
    bagged_path = run_dir / "checkpoints" / "bagged.ckpt"
    printed = " ".join(capsys.readouterr().out.split())
    assert "checkpoint: logs/default/version_0/checkpoints/bagged.ckpt" in printed
    for fold in range(FOLDS):  # each fold's own figures are not taken for the bag's
        assert f"the checkpoint kept, fold {fold} of the bag)" in printed
    checkpoint = torch.load(bagged_path, weights_only=True)
    assert checkpoint["hyper_parameters"]["networks"] == FOLDS
    # The run's config, as a single fit writes it, beside each fold's.
    assert f"folds: {FOLDS}" in (run_dir / "config.yaml").read_text()
    bagged = _load(bagged_path)

    # Each fold is a fit of its own, logged and checkpointed beside the others.
    members = []
    for fold in range(FOLDS):
        fold_dir = run_dir / f"fold_{fold}"
        assert list(fold_dir.glob("events.out.tfevents.*"))
        members.append(_load(next((fold_dir / "checkpoints").glob("epoch*.ckpt"))))
    # The bag draws the validation figures once, for its out-of-fold rows; its folds none.
    events = read_events(run_dir)
    assert set(events.Tags()["images"]) == VALIDATION_FIGURES
    assert not read_events(run_dir / "fold_0").Tags()["images"]
    # HPARAMS lists the bag beside its folds, and TEXT says what its one value per metric is.
    start = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    ).session_start_info
    assert start.hparams["networks"].number_value == FOLDS
    assert start.hparams["data/folds"].number_value == FOLDS
    assert "val/out_of_fold/text_summary" in events.Tags()["tensors"]

    # The bag predicts the mean of its fold networks' probabilities (then its temperature).
    datamodule = cli.datamodule
    test = datamodule.split_tensors("test")
    with torch.no_grad():
        each = torch.stack([m.raw_logits(test.numeric, test.categorical) for m in members], 1)
        torch.testing.assert_close(
            bagged.raw_logits(test.numeric, test.categorical), mean_probability_logit(each)
        )

    # Calibrated on the out-of-fold rows: each non-test row scored by the network that
    # never trained on it.
    logits, targets = [], []
    for fold, member in enumerate(members):
        datamodule.select_fold(fold)
        held_out = datamodule.split_tensors("val")
        with torch.no_grad():
            logits.append(member.raw_logits(held_out.numeric, held_out.categorical))
        targets.append(held_out.target)
    datamodule.select_fold(None)
    logits, targets = torch.cat(logits), torch.cat(targets)
    assert len(targets) == 1_600  # 2,000 rows less the 400 test rows
    assert float(bagged.temperature) == pytest.approx(fit_temperature(logits, targets), rel=1e-5)
    probs = torch.sigmoid(logits / bagged.temperature)
    assert float(bagged.decision_threshold) == pytest.approx(
        choose_threshold(probs, targets, "accuracy")
    )

    tested = run_cli("test", *data, f"--ckpt_path={bagged_path}", "--report.bootstrap_resamples=20")
    metrics = tested.trainer.callback_metrics
    assert 0.6 < float(metrics["test/roc_auc"]) <= 1.0
    assert float(metrics["test/threshold"]) == pytest.approx(float(bagged.decision_threshold))
    # Its model card says what the bag trained on: every non-test row, fold by fold.
    card = (tmp_path / "logs" / "default" / "version_1" / MODEL_CARD_FILE).read_text()
    assert "train and validation (2 folds)" in card and "1,600 rows" in card
    assert "each of the 2 networks trained on 1 fold and" in card
    assert "T = " in card and "(fitted on the out-of-fold predictions of the bag's 2" in card
    assert "(the threshold chosen on the out-of-fold predictions" in card
    assert "(the score: the bag's scores on the test rows" in card
    assert "| train |" not in card
    # How long each network trained, and the optimiser the folds' fits recorded.
    epochs = ", ".join(str(e) for e in checkpoint["fold_epochs"])
    assert len(checkpoint["fold_epochs"]) == FOLDS
    assert f"Each network of the bag trained {epochs} epochs (in fold order)" in card
    assert "| optimizer/lr | 0.001 |" in card

    # The test rows as new applicants: the bag's score on them is what its stability
    # reference holds (its out-of-fold scores are single networks', more spread out).
    applicants = tmp_path / "applicants.csv"
    test_rows = datamodule.labelled_table().split.test
    loan_frame.drop(columns=["default"]).iloc[test_rows].to_csv(applicants, index=False)
    output = tmp_path / "submission.csv"
    predicted = run_cli(
        "predict",
        *data,
        f"--data.predict_path={applicants}",
        f"--ckpt_path={bagged_path}",
        f"--submission.output_path={output}",
        "--submission.reason_codes=2",
    )
    x_num, x_cat, _ = next(iter(predicted.datamodule.predict_dataloader()))
    with torch.no_grad():
        expected = torch.sigmoid(bagged(x_num, x_cat)).numpy()
    submission = pd.read_csv(output)
    np.testing.assert_allclose(submission[PROBABILITY_COLUMN], expected, rtol=1e-5, atol=1e-6)
    stability = pd.read_csv(output.with_suffix(".psi.csv")).set_index("variable")
    assert stability.loc[PROBABILITY_COLUMN, "psi"] < 0.01

    # `validate` would score rows the bag trained on: refused, with the figures to use.
    with pytest.raises(ConfigurationError, match="every validation row trained all but one"):
        run_cli("validate", *data, f"--ckpt_path={bagged_path}")

    # A bag resumes from its folds' own checkpoints, not from a named file.
    with pytest.raises(ConfigurationError, match="resumes with --ckpt_path last"):
        run_cli("fit", *data, *FAST_TRAINER, f"--data.folds={FOLDS}", f"--ckpt_path={bagged_path}")
