"""Prediction files that differ from the training file, run through `predict` from a checkpoint.

One small model is trained once for the module; each test then predicts on a variant of
unlabelled applicants and checks the outcome the user sees: the file written, or the error.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from contracts.errors import ConfigurationError, DataValidationError
from datamodules.preprocessing import UNKNOWN_CODE
from datamodules.synthetic import generate_loan_book
from lightning_modules.callbacks import PROBABILITY_COLUMN
from lightning_modules.cli import LoanCLI, cli_main
from risk.attribution import column_contributions
from tests.conftest import CONFIGS, FAST_TRAINER
from tests.helpers.books import pair_risk_book

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Trained:
    workdir: Path
    train_csv: Path
    checkpoint: Path
    applicants: pd.DataFrame  # unseen rows, without the target


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    workdir = tmp_path_factory.mktemp("predict_input")
    train_csv = workdir / "train.csv"
    generate_loan_book(1500, seed=5).frame.to_csv(train_csv, index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        cli_main(
            [
                "fit",
                f"--config={CONFIGS / 'default.yaml'}",
                f"--data.path={train_csv}",
                *FAST_TRAINER,
                "--trainer.max_epochs=1",
                # Every rate input on, so that reason codes and stability see them too.
                "--data.target_statistics=true",
                "--data.value_statistics=true",
            ]
        )
    applicants = generate_loan_book(200, seed=6).frame.drop(columns=["default"])
    yield Trained(
        workdir=workdir,
        train_csv=train_csv,
        checkpoint=workdir / "logs" / "default" / "version_0" / "checkpoints" / "last.ckpt",
        applicants=applicants,
    )


def _predict(
    trained: Trained,
    frame: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *options: str,
) -> tuple[pd.DataFrame, LoanCLI]:
    tmp_path.mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)
    applicants = tmp_path / "applicants.csv"
    frame.to_csv(applicants, index=False)
    output = tmp_path / "predictions.csv"
    cli = cli_main(
        [
            "predict",
            f"--config={CONFIGS / 'default.yaml'}",
            f"--data.path={trained.train_csv}",
            f"--data.predict_path={applicants}",
            f"--ckpt_path={trained.checkpoint}",
            f"--submission.output_path={output}",
            *options,
        ]
    )
    return pd.read_csv(output), cli


def _probabilities(submission: pd.DataFrame) -> np.ndarray:
    probability = submission[PROBABILITY_COLUMN].to_numpy()
    assert np.isfinite(probability).all() and ((probability > 0) & (probability < 1)).all()
    return probability


def _line(log: str, fragment: str) -> str:
    """The log line holding fragment (the counts of other columns vary with the sample)."""
    return next((line for line in log.splitlines() if fragment in line), "")


def test_missing_feature_columns_are_named(trained, tmp_path, monkeypatch):
    frame = trained.applicants.drop(columns=["age", "region"])
    with pytest.raises(DataValidationError) as raised:
        _predict(trained, frame, tmp_path, monkeypatch)
    message = str(raised.value)
    assert "applicants.csv: feature columns not found in the file: 'age', 'region'" in message
    assert "trained on 15 feature columns and needs all of them (2 missing here)" in message


def test_a_file_of_another_dataset_is_refused(trained, tmp_path, monkeypatch):
    """A checkpoint applied to a table with other columns is refused, not misapplied."""
    other = pd.DataFrame(
        {
            "LIMIT_BAL": [20_000, 120_000, 90_000],
            "SEX": [2, 2, 1],
            "PAY_0": [2, -1, 0],
            "BILL_AMT1": [3_913, 2_682, 29_239],
            "age": [24, 26, 34],
        }
    )
    with pytest.raises(DataValidationError) as raised:
        _predict(trained, other, tmp_path, monkeypatch)
    message = str(raised.value)
    assert "(14 missing here)" in message
    assert "does not have the schema the checkpoint was trained on" in message
    assert "'annual_income'" in message and "'LIMIT_BAL'" in message  # needed, and present


def test_a_labelled_file_with_another_schema_is_refused_at_test(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other.csv"
    generate_loan_book(400, seed=7).frame.drop(columns=["interest_rate"]).to_csv(other, index=False)
    with pytest.raises(DataValidationError, match=r"other.csv.*'interest_rate'"):
        cli_main(
            [
                "test",
                f"--config={CONFIGS / 'default.yaml'}",
                f"--data.path={other}",
                f"--ckpt_path={trained.checkpoint}",
            ]
        )


def test_predictions_are_never_written_over_the_file_to_score(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    applicants = tmp_path / "applicants.csv"
    trained.applicants.to_csv(applicants, index=False)
    before = applicants.read_bytes()
    with pytest.raises(ConfigurationError, match=r"applicants\.csv is the file to score"):
        cli_main(
            [
                "predict",
                f"--config={CONFIGS / 'default.yaml'}",
                f"--data.path={trained.train_csv}",
                "--data.predict_path=applicants.csv",
                f"--ckpt_path={trained.checkpoint}",
                f"--submission.output_path={applicants}",
            ]
        )
    assert applicants.read_bytes() == before


def test_an_id_column_spelled_in_other_case_is_pointed_out(trained, tmp_path, monkeypatch, caplog):
    frame = trained.applicants.rename(columns={"loan_id": "LOAN_ID"})
    with caplog.at_level(logging.WARNING):
        submission, _ = _predict(trained, frame, tmp_path, monkeypatch)
    assert "no id column 'loan_id' (the file has 'LOAN_ID': rename it" in caplog.text
    assert "loan_id" not in submission.columns and len(submission) == len(frame)


def test_extra_columns_are_ignored_with_a_note(trained, tmp_path, monkeypatch, caplog):
    frame = trained.applicants.assign(branch="Leeds", default=0)
    plain, _ = _predict(trained, trained.applicants, tmp_path / "plain", monkeypatch)
    with caplog.at_level(logging.INFO):
        extra, _ = _predict(trained, frame, tmp_path, monkeypatch)
    assert "ignoring 1 column not used by the model: ['branch']" in caplog.text
    np.testing.assert_array_equal(_probabilities(extra), _probabilities(plain))


def test_unseen_category_levels_get_the_unknown_code_and_are_counted(
    trained, tmp_path, monkeypatch, caplog
):
    frame = trained.applicants.copy()
    frame.loc[frame.index[:7], "region"] = "atlantis"
    with caplog.at_level(logging.INFO):
        submission, cli = _predict(trained, frame, tmp_path, monkeypatch)
    assert "'region': 7" in _line(caplog.text, "category levels unseen in training (unknown code)")
    _probabilities(submission)
    region = cli.datamodule.schema.categorical_columns.index("region")
    codes = cli.datamodule.predict_dataloader().dataset.tensors.categorical[:, region]
    assert (codes[:7] == UNKNOWN_CODE).all() and (codes[7:] != UNKNOWN_CODE).all()


def test_a_column_of_nothing_but_unseen_levels_is_warned_about(trained, tmp_path, monkeypatch):
    frame = trained.applicants.assign(region=trained.applicants["region"].str.upper())
    with pytest.warns(UserWarning, match=r"column 'region': none of its values is a level"):
        _predict(trained, frame, tmp_path, monkeypatch)


def test_values_outside_the_training_range_are_counted(trained, tmp_path, monkeypatch, caplog):
    """An income of 1e30 is scored like the largest training income: a unit error or a
    typo the population stability report's open-ended top bin does not show."""

    def counted(frame: pd.DataFrame, folder: Path) -> dict[str, int]:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            submission, _ = _predict(trained, frame, folder, monkeypatch)
        assert np.isfinite(_probabilities(submission)).all()
        if "values outside the training range" not in caplog.text:
            return {}
        line = _line(caplog.text, "values outside the training range")
        return ast.literal_eval(line[line.index("{") :])

    # New applicants fall a little outside a 1,280-row training range on their own.
    before = counted(trained.applicants, tmp_path / "plain")
    frame = trained.applicants.copy()
    income = frame["annual_income"]
    inside = frame.index[income.between(income.quantile(0.4), income.quantile(0.6))][:3]
    frame.loc[inside, "annual_income"] = 1e30
    after = counted(frame, tmp_path)
    assert after["annual_income"] == before.get("annual_income", 0) + 3
    assert {k: v for k, v in after.items() if k != "annual_income"} == {
        k: v for k, v in before.items() if k != "annual_income"
    }


def test_a_column_with_no_value_in_the_file_is_pointed_out(trained, tmp_path, monkeypatch):
    frame = trained.applicants.copy()
    frame["age"] = np.nan
    frame["employment_status"] = np.nan
    with pytest.warns(UserWarning, match="no value in any row") as caught:
        _predict(trained, frame, tmp_path, monkeypatch)
    (warning,) = [w for w in caught if "no value in any row" in str(w.message)]
    assert "['age', 'employment_status']" in str(warning.message)


def test_gaps_in_columns_complete_in_training_are_imputed_and_counted(
    trained, tmp_path, monkeypatch, caplog
):
    frame = trained.applicants.copy()
    gaps = frame.index[[3, 10, 20, 30]]
    frame.loc[gaps, "age"] = np.nan
    # A category too: scored as missing, a code no training row had.
    frame.loc[frame.index[[5, 6]], "employment_status"] = np.nan
    with caplog.at_level(logging.INFO):
        _, cli = _predict(trained, frame, tmp_path, monkeypatch)
    line = _line(caplog.text, "columns complete in training (numbers imputed")
    assert "'age': 4" in line and "'employment_status': 2" in line

    preprocessor = cli.datamodule.preprocessor
    assert "age" not in preprocessor.indicator_columns_  # no missing indicator was learned
    median = preprocessor.medians_[preprocessor.numeric_columns.index("age")]
    filled = frame.copy()
    filled.loc[gaps, "age"] = median
    _, by_hand = _predict(trained, filled, tmp_path / "filled", monkeypatch)
    encoded = cli.datamodule.predict_dataloader().dataset.tensors.numeric
    encoded_by_hand = by_hand.datamodule.predict_dataloader().dataset.tensors.numeric
    # Every input of a gap row is the median-filled row's, except the age's value count and
    # value statistic: a gap is not a heaped value, so it gets the inputs of a value
    # training never had.
    owners = preprocessor.numeric_input_owners()
    age_value = preprocessor.numeric_columns.index("age")
    age_derived = [i for i, owner in enumerate(owners) if owner == ("age",) and i != age_value]
    assert len(age_derived) == 2
    others = [i for i in range(encoded.shape[1]) if i not in age_derived]
    torch.testing.assert_close(encoded[:, others], encoded_by_hand[:, others])
    rows = [3, 10, 20, 30]
    for column in age_derived:
        unseen = encoded[rows, column]
        assert (unseen == unseen[0]).all() and (encoded_by_hand[rows, column] != unseen).all()


def test_text_in_a_numeric_column_at_predict_is_named(trained, tmp_path, monkeypatch):
    frame = trained.applicants.astype({"loan_amount": object})
    frame.loc[frame.index[:3], "loan_amount"] = "ten thousand"
    with pytest.raises(DataValidationError, match=r"numeric column 'loan_amount' holds 3 values"):
        _predict(trained, frame, tmp_path, monkeypatch)


def test_a_shifted_column_tops_the_stability_report(trained, tmp_path, monkeypatch, capsys):
    """One column moved (rates up by half) is the first feature of the PSI report, shifted;
    the run still writes its predictions."""
    frame = trained.applicants.assign(interest_rate=trained.applicants["interest_rate"] * 1.5)
    submission, _ = _predict(trained, frame, tmp_path, monkeypatch)
    _probabilities(submission)
    report = pd.read_csv(tmp_path / "predictions.psi.csv")
    assert report.loc[0, "kind"] == "score"
    features = report.iloc[1:]
    assert features.iloc[0]["variable"] == "interest_rate"
    assert features.iloc[0]["band"] == "shifted" and features.iloc[0]["psi"] > 1.0
    assert features["psi"].is_monotonic_decreasing
    assert len(features) == 15
    summary = " ".join(capsys.readouterr().out.split())
    assert re.search(r"shifted \(PSI > 0.25\): [^;]*interest_rate", summary)


def test_a_small_file_gets_psi_figures_but_no_verdict(trained, tmp_path, monkeypatch, capsys):
    """Sampling alone gives a PSI of about 9/n: a file of 50 rows would read as shifted."""
    submission, _ = _predict(trained, trained.applicants.head(50), tmp_path, monkeypatch)
    assert len(submission) == 50
    summary = " ".join(capsys.readouterr().out.split())
    assert (
        "PSI: no verdict on 50 rows (fewer than 200: sampling alone gives a PSI of 0.18 or more)"
        in summary
    )
    assert "shifted │" not in summary and "too few rows" in summary  # no band in the table
    report = pd.read_csv(tmp_path / "predictions.psi.csv")
    assert len(report) == 16 and (report["band"] == "too few rows").all()  # figures, no band


def test_reason_codes_are_faithful_and_add_up_to_the_logit(trained, tmp_path, monkeypatch):
    """Integrated gradients against the typical applicant: the contributions of all columns
    add up to the logit difference (completeness), and putting an applicant's top reason
    back at the typical value moves the score more than putting back its least relevant
    column (faithfulness)."""
    submission, cli = _predict(
        trained,
        trained.applicants,
        tmp_path,
        monkeypatch,
        "--submission.reason_codes=3",
        "--submission.points=true",
    )
    model, datamodule = cli.model.eval(), cli.datamodule
    schema = datamodule.schema
    inputs = datamodule.predict_inputs().tensors
    x_num, x_cat = inputs.numeric, inputs.categorical
    ref_num, ref_cat = datamodule.reference_applicant()
    numeric, categorical, _ = model.input_attributions(x_num, x_cat, ref_num, ref_cat)
    owners = datamodule.numeric_input_owners()
    contributions = column_contributions(numeric, owners, schema.feature_columns)
    contributions[:, len(schema.numeric_columns) :] += categorical

    def logit(num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(num, cat)

    difference = logit(x_num, x_cat) - logit(ref_num, ref_cat)
    gap = (contributions.sum(dim=1) - difference).abs()
    assert float(gap.max()) < 0.02 + 0.02 * float(difference.abs().max())

    def moved_to_reference(column: int) -> torch.Tensor:
        num, cat = x_num.clone(), x_cat.clone()
        name = schema.feature_columns[column]
        index = [i for i, owner in enumerate(owners) if name in owner]
        num[:, index] = ref_num[:, index]  # a categorical's target statistic, pair rates
        if name in schema.categorical_columns:
            position = schema.categorical_columns.index(name)
            cat[:, position] = ref_cat[0, position]
        return (logit(num, cat) - logit(x_num, x_cat)).abs()

    top = contributions.argmax(dim=1)
    low = contributions.abs().argmin(dim=1)
    rows = torch.arange(len(top))
    change_top = torch.stack([moved_to_reference(int(c)) for c in range(contributions.shape[1])])
    faithful = change_top[top, rows] > change_top[low, rows]
    assert float(faithful.float().mean()) > 0.8

    names = np.asarray(schema.feature_columns, dtype=object)
    raised = contributions.max(dim=1).values > 0
    expected = np.where(raised.numpy(), names[top.numpy()], "")
    assert submission["reason_1"].fillna("").tolist() == expected.tolist()
    np.testing.assert_allclose(
        submission["reason_1_contribution"].dropna(),
        contributions.max(dim=1).values[raised].numpy(),
        rtol=1e-4,
    )
    by_probability = submission.sort_values(PROBABILITY_COLUMN)
    assert (np.diff(by_probability["points"]) <= 0).all()


def test_a_pairs_rate_travels_to_predict_and_its_reasons_are_its_columns(tmp_path, monkeypatch):
    """A file whose risk lies only in the pair of two categoricals: `fit` keeps that pair's
    rate, the checkpoint carries it (loaded with `weights_only`), `predict` encodes new
    rows with it, and where the pair raises an applicant's risk the top reason is one of
    its two columns, never the noise column beside them."""
    n_train = 3800
    frame, risky = pair_risk_book(4000)
    train_csv, applicants = tmp_path / "train.csv", tmp_path / "applicants.csv"
    frame.iloc[:n_train].to_csv(train_csv, index=False)
    frame.iloc[n_train:].drop(columns=["default"]).to_csv(applicants, index=False)
    monkeypatch.chdir(tmp_path)
    common = [f"--config={CONFIGS / 'default.yaml'}", f"--data.path={train_csv}"]
    fitted = cli_main(["fit", *common, *FAST_TRAINER, "--trainer.max_epochs=3"])
    assert fitted.datamodule.preprocessor.combination_columns_ == [("grade", "purpose")]
    checkpoint = tmp_path / "logs" / "default" / "version_0" / "checkpoints" / "last.ckpt"
    output = tmp_path / "predictions.csv"
    cli = cli_main(
        [
            "predict",
            *common,
            f"--data.predict_path={applicants}",
            f"--ckpt_path={checkpoint}",
            f"--submission.output_path={output}",
            "--submission.reason_codes=1",
        ]
    )
    assert cli.datamodule.numeric_input_owners()[-1] == ("grade", "purpose")
    submission = pd.read_csv(output)
    new_risky = risky[n_train:]
    probability = _probabilities(submission)
    assert probability[new_risky].mean() > 2 * probability[~new_risky].mean()
    assert set(submission["reason_1"][new_risky]) <= {"grade", "purpose"}
    # Where one of the two is the typical applicant's level, the reason is the other one.
    preprocessor = cli.datamodule.preprocessor
    _, reference = cli.datamodule.reference_applicant()
    labels, columns = preprocessor.code_labels(), preprocessor.categorical_columns
    applicants_frame = frame.iloc[n_train:].reset_index(drop=True)
    checked = 0
    for name in ("grade", "purpose"):
        typical = labels[name][int(reference[0, columns.index(name)])]
        rows = new_risky & (applicants_frame[name].astype(str) == typical).to_numpy()
        assert (submission["reason_1"][rows] != name).all()
        checked += int(rows.sum())
    assert checked > 0


def test_codes_with_leading_zeros_keep_them_in_a_file_of_digits_only(tmp_path, monkeypatch):
    """Training read "007" as text (the column also holds "X01"); a file to score whose codes
    are all digits would be read as numbers (7) and match no training level."""
    monkeypatch.chdir(tmp_path)
    train = generate_loan_book(1500, seed=5).frame
    train["branch"] = [f"{row % 12:03d}" for row in range(len(train))]
    train.loc[train.index[:30], "branch"] = "X01"
    train_csv = tmp_path / "train.csv"
    train.to_csv(train_csv, index=False)
    categoricals = ["employment_status", "home_ownership", "loan_purpose", "region", "branch"]
    on_file = [
        f"--config={CONFIGS / 'default.yaml'}",
        f"--data.path={train_csv}",
        f"--data.categorical_columns={categoricals}",  # mostly digits: inferred numeric
    ]
    cli_main(["fit", *on_file, *FAST_TRAINER, "--trainer.max_epochs=1"])
    applicants = generate_loan_book(200, seed=6).frame.drop(columns=["default"])
    applicants["branch"] = [f"{row % 12:03d}" for row in range(len(applicants))]
    applicants_csv = tmp_path / "applicants.csv"
    applicants.to_csv(applicants_csv, index=False)
    cli = cli_main(
        [
            "predict",
            *on_file,
            f"--data.predict_path={applicants_csv}",
            "--ckpt_path=logs/default/version_0/checkpoints/last.ckpt",
            f"--submission.output_path={tmp_path / 'predictions.csv'}",
        ]
    )
    assert "branch" in cli.datamodule.schema.text_categoricals
    branch = cli.datamodule.schema.categorical_columns.index("branch")
    codes = cli.datamodule.predict_dataloader().dataset.tensors.categorical[:, branch]
    assert len(codes) == 200 and not (codes == UNKNOWN_CODE).any()
