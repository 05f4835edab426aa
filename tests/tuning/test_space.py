"""Search-space files: what they draw, the CLI arguments they give, and their mistakes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from contracts.errors import ConfigurationError
from lightning_modules.cli import DEBUG_ENV, build_cli, run_entry_point
from tests.conftest import CONFIGS
from tuning.space import cli_overrides, load_space
from tuning.tune import DEFAULT_SPACE, main

REPO_SPACE = CONFIGS.parent / DEFAULT_SPACE


def _space_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_the_default_space_names_real_options_and_holds_the_recommended_model():
    space = load_space(REPO_SPACE)
    cli = build_cli(["--config", str(CONFIGS / "default.yaml"), *space.fixed_overrides()])
    space.check_keys(cli.config.keys())
    params = space.params_for(space.config_values(cli.config))
    assert params == {
        "lr": 0.001,
        "weight_decay.off": False,
        "weight_decay": 0.01,
        "dropout": 0.25,
        "hidden_sizes.off": True,  # "auto": the default's rule by training-set size
        "numeric_embedding": "piecewise",
        "n_bins": 48,
        "lr_schedule": "auto",
        "batch_size": "auto",
        "scaling": "quantile",
    }
    assert space.outside(space.config_values(cli.config)) is None
    lr_elsewhere = build_cli(
        ["--config", str(CONFIGS / "default.yaml"), "--model.optimizer.init_args.lr=0.05"]
    )
    assert space.params_for(space.config_values(lr_elsewhere.config)) is None
    assert space.outside(space.config_values(lr_elsewhere.config)) == (
        "model.optimizer.init_args.lr = 0.05 is not among what parameter 'lr' draws "
        "(float in [3e-05, 0.003] log)"
    )


def test_a_users_override_of_a_searched_option_is_named():
    space = load_space(REPO_SPACE)
    args = ["--model.net.dropout", "0.7", "--data.seed=1", "--model.net.n_bins=32"]
    assert space.searched_in(args) == ["--model.net.dropout", "--model.net.n_bins"]
    assert space.searched_in(["--data.seed", "1"]) == []


def test_draws_follow_the_conditions_and_become_cli_arguments():
    space = load_space(REPO_SPACE)
    drawn: list[dict] = []

    def objective(trial: optuna.Trial) -> float:
        drawn.append(space.suggest(trial))
        return 0.0

    sampler = optuna.samplers.RandomSampler(seed=0)
    optuna.create_study(sampler=sampler).optimize(objective, n_trials=40)
    for values in drawn:
        embedding = values["model.net.numeric_embedding"]
        assert ("model.net.n_bins" in values) == (embedding == "piecewise")
        assert ("model.net.periodic_sigma" in values) == (embedding == "periodic")
        sizes = values["model.net.hidden_sizes"]
        assert sizes == "auto" or (
            1 <= len(sizes) <= 4 and len(set(sizes)) == 1 and 64 <= sizes[0] <= 1024
        )
        assert 3e-5 <= values["model.optimizer.init_args.lr"] <= 3e-3
    assert sum(values["model.net.hidden_sizes"] == "auto" for values in drawn) in range(5, 36)
    decays = [values["model.optimizer.init_args.weight_decay"] for values in drawn]
    assert 0.0 in decays and any(1e-4 <= decay <= 0.1 for decay in decays)
    assert {values["model.net.numeric_embedding"] for values in drawn} == {
        "piecewise",
        "periodic",
        "none",
    }


def test_values_are_written_as_the_cli_parses_them():
    values = {"model.net.hidden_sizes": [128, 128], "data.value_counts": False, "model.lr": 3e-4}
    values |= {"model.net.numeric_embedding": "none", "model.net.n_bins": 16}
    assert cli_overrides(values) == [
        "--model.net.hidden_sizes=[128, 128]",
        "--data.value_counts=false",
        "--model.lr=0.0003",
        "--model.net.numeric_embedding=none",
        "--model.net.n_bins=16",
    ]


DROPOUT = "parameters:\n  dropout:\n    key: model.net.dropout\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DROPOUT + "    type: float\n    low: 0.0\n    hihg: 0.5\n", "unknown field(s) ['hihg']"),
        (DROPOUT + "    type: float\n    low: 0.5\n    high: 0.1\n", "low must be below high"),
        (DROPOUT + "    type: float\n    low: 0.0\n    high: 0.5\n    log: true\n", "low > 0"),
        (DROPOUT + "    type: normal\n", "type must be one of"),
        (DROPOUT + "    type: categorical\n    choices: []\n", "non-empty list"),
        (
            DROPOUT + "    type: float\n    low: 0.0\n    high: 0.5\n    when: {embedding: [a]}\n",
            "not a categorical parameter listed earlier",
        ),
        ("parameter:\n  dropout: {}\n", "unknown top-level key(s) ['parameter']"),
    ],
    ids=["unknown field", "low above high", "log from zero", "type", "no choices", "when", "top"],
)
def test_a_bad_space_file_is_named_with_its_parameter(tmp_path, text, message):
    path = _space_file(tmp_path, text)
    with pytest.raises(ConfigurationError) as raised:
        load_space(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)
    if text.startswith("parameters"):
        assert "parameter 'dropout'" in str(raised.value)


def test_an_unknown_option_is_named_with_the_closest_real_one(tmp_path):
    path = _space_file(
        tmp_path,
        "parameters:\n  dropout:\n    {key: model.net.dropuot, type: float, low: 0, high: 0.5}\n",
    )
    known = ["model.net.dropout", "model.net.n_bins", "data.batch_size"]
    with pytest.raises(ConfigurationError) as raised:
        load_space(path).check_keys(known)
    assert f"{path}: parameter 'dropout': 'model.net.dropuot' is not an option" in str(raised.value)
    assert "did you mean 'model.net.dropout'?" in str(raised.value)


def test_the_command_prints_a_bad_space_without_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    path = _space_file(tmp_path, DROPOUT + "    type: float\n    low: 0.5\n    high: 0.1\n")
    args = ["--config", str(CONFIGS / "default.yaml"), "--space", str(path), "--trials", "1"]
    with pytest.raises(SystemExit) as raised:
        run_entry_point(lambda: main(args))
    assert raised.value.code == 2
    shown = capsys.readouterr()
    assert f"error: {path}: parameter 'dropout': low/high: low must be below high" in shown.err
    assert "Traceback" not in shown.err + shown.out


def test_a_trial_the_model_refuses_ends_the_study_with_one_message(tmp_path):
    """As a user runs it: Optuna's own warning would repeat the error's traceback."""
    path = _space_file(tmp_path, DROPOUT + "    type: categorical\n    choices: [1.2]\n")
    args = ["--config", str(CONFIGS / "default.yaml"), "--space", str(path), "--trials", "1"]
    args += ["--output", str(tmp_path / "out"), "--data.synthetic_rows=1000"]
    environment = {key: value for key, value in os.environ.items() if key != DEBUG_ENV}
    shown = subprocess.run(
        [sys.executable, str(CONFIGS.parent / "scripts" / "tune.py"), *args],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert shown.returncode == 2
    assert "trial 0's values {'model.net.dropout': 1.2} are not accepted" in shown.stderr
    assert "Traceback" not in shown.stderr + shown.stdout
