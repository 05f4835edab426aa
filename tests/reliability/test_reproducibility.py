"""Same seed and config, same result; checkpoints that load without unpickling code."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from datamodules.synthetic import generate_loan_book
from lightning_modules.cli import LoanCLI, cli_main
from tests.conftest import CONFIGS, FAST_TRAINER, REPO

# Leaves a checkpoint may hold for `torch.load(..., weights_only=True)` to accept it.
PLAIN_LEAVES = (torch.Tensor, str, int, float, bool, type(None))
PROJECT_FOLDERS = (
    "contracts",
    "datamodules",
    "lightning_modules",
    "analysis",
    "benchmarking",
    "tuning",
    "risk",
    "scripts",
    "tests",
)


@dataclass(frozen=True)
class Run:
    cli: LoanCLI
    folder: Path  # logs/default/version_N

    @property
    def last(self) -> Path:
        return self.folder / "checkpoints" / "last.ckpt"

    @property
    def best(self) -> Path:
        return next((self.folder / "checkpoints").glob("epoch*.ckpt"))


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Run, Run, Path]]:
    """The same `fit` command run twice in one folder (versions 0 and 1), and its data."""
    workdir = tmp_path_factory.mktemp("reproducibility")
    train_csv = workdir / "train.csv"
    generate_loan_book(1500, seed=8).frame.to_csv(train_csv, index=False)
    args = ["fit", f"--config={CONFIGS / 'default.yaml'}", f"--data.path={train_csv}"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        runs = [
            Run(cli_main([*args, *FAST_TRAINER]), workdir / "logs" / "default" / f"version_{n}")
            for n in range(2)
        ]
    yield runs[0], runs[1], workdir


def _metrics(cli: LoanCLI, stage: str) -> dict[str, float]:
    prefix = f"{stage}/"
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith(prefix)}


@pytest.mark.slow
def test_same_seed_and_config_give_identical_metrics_and_weights(twice):
    first, second, _ = twice
    assert first.cli.trainer.logger.version == 0 and second.cli.trainer.logger.version == 1
    assert _metrics(first.cli, "val") == _metrics(second.cli, "val")
    assert len(_metrics(first.cli, "val")) >= 10
    weights = torch.load(first.last, weights_only=True)["state_dict"]
    again = torch.load(second.last, weights_only=True)["state_dict"]
    assert weights.keys() == again.keys()
    assert all(torch.equal(weights[name], again[name]) for name in weights)


@pytest.mark.slow
def test_same_seed_and_config_give_identical_predictions_and_test_metrics(
    twice, monkeypatch, tmp_path
):
    """Predicted files are compared byte for byte, under forced weights-only loading."""
    first, second, workdir = twice
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")  # any unsafe load would fail
    applicants = tmp_path / "applicants.csv"
    generate_loan_book(300, seed=9).frame.drop(columns=["default"]).to_csv(applicants, index=False)
    outputs, tested = [], []
    for number, run in enumerate((first, second)):
        common = [f"--config={CONFIGS / 'default.yaml'}", f"--data.path={workdir / 'train.csv'}"]
        output = tmp_path / f"predictions_{number}.csv"
        cli = cli_main(
            [
                "predict",
                *common,
                f"--data.predict_path={applicants}",
                f"--ckpt_path={run.best}",
                f"--submission.output_path={output}",
            ]
        )
        assert cli.config["predict"]["weights_only"] is True
        outputs.append(output.read_bytes())
        tested.append(_metrics(cli_main(["test", *common, f"--ckpt_path={run.best}"]), "test"))
    assert outputs[0] == outputs[1] and outputs[0].count(b"\n") == 301
    assert tested[0] == tested[1] and "test/roc_auc" in tested[0]


def _plain_leaves(value: object, where: str = "checkpoint") -> Iterator[str]:
    """Paths of values that are not tensors, numbers, strings or plain containers."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, PLAIN_LEAVES):
                yield f"{where} key {key!r}"
            yield from _plain_leaves(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _plain_leaves(item, f"{where}[{index}]")
    elif not isinstance(value, PLAIN_LEAVES):
        yield f"{where}: {type(value).__name__}"


@pytest.mark.slow
def test_checkpoints_hold_only_tensors_and_plain_containers(twice):
    first, _, _ = twice
    for path in (first.best, first.last):
        checkpoint = torch.load(path, weights_only=True)
        assert list(_plain_leaves(checkpoint)) == []
        assert {"state_dict", "LoanDataModule", "hyper_parameters"} <= set(checkpoint)
        # `ensemble_size: auto` is kept resolved (960 training rows: 8 members), so the
        # checkpoint rebuilds its network without the data.
        assert checkpoint["hyper_parameters"]["net"]["ensemble_size"] == 8
    # Only last.ckpt resumes a fit: the best epoch's file is written weights only.
    last = torch.load(first.last, weights_only=True)
    assert any("ResumableRun" in key for key in last["callbacks"])
    assert "optimizer_states" in last
    best = torch.load(first.best, weights_only=True)
    assert "callbacks" not in best and "optimizer_states" not in best


def _project_sources() -> Iterator[Path]:
    for folder in PROJECT_FOLDERS:
        yield from (REPO / folder).rglob("*.py")


def _unsafe_loads(text: str, name: str) -> Iterator[str]:
    """Calls that could unpickle: torch.load without weights_only=True, any weights_only=False."""
    for node in ast.walk(ast.parse(text, filename=name)):
        if not isinstance(node, ast.Call):
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg is not None}
        flag = keywords.get("weights_only")
        where = f"{name}:{node.lineno}"
        if isinstance(flag, ast.Constant) and flag.value is False:
            yield f"{where}: weights_only=False"
        function = node.func
        is_torch_load = (
            isinstance(function, ast.Attribute)
            and function.attr == "load"
            and isinstance(function.value, ast.Name)
            and function.value.id == "torch"
        )
        if is_torch_load and not (isinstance(flag, ast.Constant) and flag.value is True):
            yield f"{where}: torch.load without weights_only=True"


def test_the_project_never_loads_a_checkpoint_unsafely():
    sources = list(_project_sources())
    assert len(sources) > 20  # the scan reaches the whole project
    found = [
        problem
        for source in sources
        for problem in _unsafe_loads(source.read_text(), str(source.relative_to(REPO)))
    ]
    assert found == []


def test_the_scan_catches_unsafe_loads():
    """The scanner itself: each unsafe spelling is reported, the safe one is not."""
    text = (
        "import torch\n"
        "a = torch.load('x.ckpt')\n"
        "b = torch.load('x.ckpt', weights_only=False)\n"
        "c = Model.load_from_checkpoint('x.ckpt', weights_only=False)\n"
        "d = torch.load('x.ckpt', weights_only=True)\n"
    )
    found = list(_unsafe_loads(text, "sample.py"))
    assert [line.split(":")[1] for line in found] == ["2", "3", "3", "4"]
