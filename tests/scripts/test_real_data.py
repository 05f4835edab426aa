"""Short runs on the shared real datasets (skipped, with the reason, when they are absent)."""

from __future__ import annotations

import pandas as pd
import pytest

from lightning_modules.callbacks import LABEL_COLUMN, PROBABILITY_COLUMN
from tests.conftest import CONFIGS, FAST_TRAINER

pytestmark = [pytest.mark.slow, pytest.mark.real_data]


def test_short_fit_on_taiwan_learns_above_chance(run_cli, real_data_dir):
    cli = run_cli(
        "fit",
        f"--config={CONFIGS / 'taiwan.yaml'}",
        f"--data.data_dir={real_data_dir}",
        *FAST_TRAINER,
    )
    schema = cli.datamodule.schema
    assert schema.categorical_columns == ("SEX", "EDUCATION", "MARRIAGE")
    assert "ID" not in schema.feature_columns and len(schema.numeric_columns) == 20
    assert float(cli.trainer.callback_metrics["val/roc_auc"]) > 0.72


def test_gmsc_submission_for_the_unlabelled_kaggle_file(run_cli, real_data_dir, tmp_path):
    common = [f"--config={CONFIGS / 'gmsc.yaml'}", f"--data.data_dir={real_data_dir}"]
    run_cli("fit", *common, *FAST_TRAINER, "--trainer.max_epochs=1", "--data.batch_size=1024")
    checkpoint = next((tmp_path / "logs" / "gmsc" / "version_0" / "checkpoints").glob("epoch*"))
    output = tmp_path / "gmsc_submission.csv"
    run_cli(
        "predict",
        *common,
        "--data.predict_path=give_me_some_credit/cs-test.csv.gz",
        f"--ckpt_path={checkpoint}",
        f"--submission.output_path={output}",
    )
    submission = pd.read_csv(output)
    assert len(submission) == 101_503
    assert list(submission.columns) == ["id", PROBABILITY_COLUMN, LABEL_COLUMN]
    assert submission["id"].tolist() == list(range(1, 101_504))
    assert submission[PROBABILITY_COLUMN].between(0, 1).all()
    assert 0.0 < submission[LABEL_COLUMN].mean() < 0.2
