"""`scripts/benchmark.py` end to end (--quick, a bad dataset, a derived one), plus the
scoreboard's metrics and the paired comparison's statistics."""

from __future__ import annotations

import json
import shutil
from argparse import ArgumentError
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from benchmarking import runner
from benchmarking.baselines import BASELINES
from benchmarking.machine import git_commit
from benchmarking.scoreboard import (
    METRICS,
    fit_time_ratios,
    markdown_tables,
    paired_comparison,
    summarise,
    worst_cases,
    worst_cases_markdown,
)
from benchmarking.suite import (
    MODELS,
    ROBUSTNESS,
    _no_result,
    derived_dataset,
    is_derived,
    main,
    repeated_run,
)
from lightning_modules.bagging import FOLD_RECORD
from lightning_modules.metrics import binary_report
from tests.conftest import CONFIGS

PROBABILITY_METRICS = [name for name in METRICS if name != "log_loss"]
SYNTHETIC_ARGS = [
    "--quick",
    "--datasets",
    "default",
    "--data-args=--data.synthetic_rows=3000",
    "--threads=1",
    "--variant",
    "broken=--model.net.dropout=2.0",
    "--variant",
    "bag8=--data.folds=8",
    "--reference=logreg",
    "--models",
    *MODELS,
    "fast",
    "lightgbm-bagged",
    "bag8",
    "broken",
]
EXTRA = ["fast", "lightgbm-bagged", "bag8"]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """One quick benchmark of every model on 3,000 synthetic rows (where the default bags
    eight networks), `fast`, bagged LightGBM, a variant pinning the default's eight folds
    (as the built-in `bagged` pins five), and a variant that fails."""
    out = tmp_path_factory.mktemp("benchmark")
    return out, main([*SYNTHETIC_ARGS, "--out", str(out)])


def _check_scores(runs: pd.DataFrame) -> None:
    for metric in PROBABILITY_METRICS:
        assert runs[metric].between(0, 1).all(), metric
    assert (runs["log_loss"] > 0).all()
    assert (runs["fit_seconds"] > 0).all()
    assert (runs["train_rows_per_second"] > 0).all()
    assert (runs["passes"] >= 1).all()
    assert (runs["peak_rss_mb"] > runs["peak_rss_growth_mb"]).all()
    assert (runs["peak_rss_growth_mb"] > 0).all()


@pytest.mark.slow
def test_quick_benchmark_writes_one_row_per_run_and_records_the_failure(synthetic_run):
    out, exit_code = synthetic_run
    runs = pd.read_csv(out / "results.csv")

    assert exit_code == 1  # the broken variant failed, and said so
    assert list(runs["model"]) == [*MODELS, *EXTRA, "broken"]
    assert (runs["dataset"] == "default").all() and (runs["seed"] == 0).all()
    ok = runs[runs["model"] != "broken"]
    assert (ok["status"] == "ok").all(), ok["error"].tolist()
    _check_scores(ok)
    assert (ok["roc_auc"] > 0.7).all()
    # With 377 training defaulters in 1,920 training rows the default bags eight networks,
    # each trained on 7 of 8 folds of the 80 % non-test rows (2,100), not the 64 % (1,920)
    # of one network; bagged LightGBM on the same folds.
    by_model = ok.set_index("model")
    assert by_model["folds"].to_dict() == {
        "logreg": 1,
        "lightgbm": 1,
        "xgboost": 1,
        "hgb": 1,
        "catboost": 1,
        "mlp": 8,
        "fast": 1,
        "lightgbm-bagged": 8,
        "bag8": 8,
    }
    rows = by_model["train_rows"]
    assert rows["mlp"] == rows["lightgbm-bagged"] == 2100
    assert rows["fast"] == rows["lightgbm"] == 1920
    # --quick trains three epochs, on each fold of a bag.
    assert by_model["passes"]["mlp"] == 24 and by_model["passes"]["fast"] == 3
    broken = runs[runs["model"] == "broken"].iloc[0]
    assert broken["status"] == "failed" and "dropout" in broken["error"]

    report = json.loads((out / "results.json").read_text())
    assert {"command", "cpu", "cores", "packages", "load_average_after"} <= set(report["metadata"])
    # Every library that ran has its version recorded, XGBoost's CPU build (`xgboost-cpu`) too.
    assert "not installed" not in report["metadata"]["packages"].values()
    assert len(report["runs"]) == len(report["summary"]) == len(MODELS) + len(EXTRA) + 1
    paired, *others = report["paired"]
    assert paired["model"] == "mlp" and paired["best_baseline"] in [*BASELINES, "lightgbm-bagged"]
    assert [other["model"] for other in others] == ["fast", "bag8"]
    assert paired["ci_low"] is None  # one seed: no interval
    against = report["paired_reference"][0]  # --reference logreg: mlp against it, seed by seed
    assert (against["model"], against["best_baseline"]) == ("mlp", "logreg")
    mlp, logreg = (ok.set_index("model").loc[name, "roc_auc"] for name in ("mlp", "logreg"))
    assert against["mean_difference"] == pytest.approx(mlp - logreg)
    # Every model, baselines too, against the best of the baselines other than itself.
    cases = {case["model"]: case for case in report["worst_cases"]}
    assert set(cases) == set(ok["model"])
    assert cases["mlp"]["worst_against"] == paired["best_baseline"]
    assert cases[paired["best_baseline"]]["worst_against"] != paired["best_baseline"]

    summary = (out / "summary.md").read_text()
    # Every metric of the report is a column, the headline first.
    assert f"| dataset | model | seeds ok | {' | '.join(METRICS)} |" in summary
    assert set(METRICS) <= set(runs.columns)
    assert "| default | broken | 0 (1 failed) |" in summary
    assert "roc_auc of our model minus `logreg`" in summary
    assert "### Fit time against LightGBM" in summary
    assert "## Every model against the best other baseline" in summary


@pytest.mark.slow
def test_network_run_is_scored_as_its_own_test_step_scores_it(synthetic_run):
    out, _ = synthetic_run
    record = json.loads((out / "runs" / "default" / "mlp-seed0.json").read_text())
    logged = record["lightning_test"]

    for metric in ("roc_auc", "accuracy", "f1", "log_loss", "threshold", "calibration_error"):
        assert record[metric] == pytest.approx(logged[f"test/{metric}"], abs=1e-6), metric
    run_dir = out / "tensorboard" / "default" / "mlp-seed0"
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert (run_dir / "config.yaml").is_file()
    # Of the checkpoints only the tested model is kept: the bag's, not its folds' or the
    # last epochs' (they only resume a fit); a single network's best epoch.
    assert [path.name for path in run_dir.rglob("*.ckpt")] == ["bagged.ckpt"]
    assert not list(run_dir.glob(f"fold_*/{FOLD_RECORD}"))  # the folds' records, alike
    logs = [*(out / "runs" / "default").glob("*.log"), *(out / "data-checks").glob("*.log")]
    assert logs and not [log for log in logs if "💡 Tip" in log.read_text()]
    assert len(list(run_dir.glob("fold_*/events.out.tfevents.*"))) == 8
    (single,) = (out / "tensorboard" / "default" / "fast-seed0").rglob("*.ckpt")
    assert single.parent.name == "checkpoints" and single.name.startswith("epoch")


@pytest.mark.slow
def test_a_variant_pinning_the_defaults_folds_is_the_defaults_own_run(synthetic_run):
    out, _ = synthetic_run
    mlp, bag8 = (
        json.loads((out / "runs" / "default" / f"{model}-seed0.json").read_text())
        for model in ("mlp", "bag8")
    )

    assert bag8["same_run_as"] == "mlp" and "same_run_as" not in mlp
    assert bag8["spec"]["network_args"] == ["--data.folds=8", "--trainer.max_epochs=3"]
    assert {key: value for key, value in bag8.items() if key not in ("same_run_as", "model")} == {
        key: value for key, value in mlp.items() if key != "model"
    } | {"spec": bag8["spec"]}
    assert not (out / "tensorboard" / "default" / "bag8-seed0").exists()  # not trained again


def test_a_variant_pinning_the_folds_repeats_a_run_only_where_it_resolved_them(tmp_path):
    def spec(model: str, network_args: tuple[str, ...]) -> runner.RunSpec:
        config = str(CONFIGS / "default.yaml")
        return runner.RunSpec("d", model, 0, config, str(tmp_path), network_args=network_args)

    mlp, bagged, three = (
        spec("mlp", ()),
        spec("bagged", ("--data.folds=5",)),
        spec("b3", ("--data.folds=3",)),
    )
    wider = spec("wider", ("--model.net.dropout=0.1", "--data.folds=5"))
    plan = [mlp, bagged, three, wider]
    assert repeated_run(bagged, plan) is None  # nothing stored yet

    def store(folds: int) -> None:
        mlp.result_path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "model": "mlp",
            "status": "ok",
            "roc_auc": 0.8,
            "folds": folds,
            "spec": mlp.fingerprint(),
        }
        mlp.result_path.write_text(json.dumps(record))

    store(folds=1)  # the default fitted one network: `bagged` must run
    assert repeated_run(bagged, plan) is None
    store(folds=5)
    copied = repeated_run(bagged, plan)
    assert copied is not None and copied["roc_auc"] == 0.8
    assert (copied["model"], copied["same_run_as"], copied["spec"]) == (
        "bagged",
        "mlp",
        bagged.fingerprint(),
    )
    assert repeated_run(three, plan) is None  # another fold count
    assert repeated_run(wider, plan) is None  # another network


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_retries_failed_ones(synthetic_run):
    out, _ = synthetic_run
    results = sorted((out / "runs" / "default").glob("*.json"))
    before = {path.name: path.stat().st_mtime_ns for path in results}

    assert main([*SYNTHETIC_ARGS, "--out", str(out)]) == 1
    after = {path.name: path.stat().st_mtime_ns for path in results}

    changed = {name for name in before if after[name] != before[name]}
    assert changed == {"broken-seed0.json"}
    assert len(pd.read_csv(out / "results.csv")) == len(MODELS) + len(EXTRA) + 1
    # A run records the commit it ran at; --rerun runs a model again whatever is stored.
    record = json.loads((out / "runs" / "default" / "logreg-seed0.json").read_text())
    assert record["git_commit"] == git_commit()
    assert main([*SYNTHETIC_ARGS, "--out", str(out), "--rerun", "logreg"]) == 1
    again = {path.name: path.stat().st_mtime_ns for path in results}
    assert {name for name in after if again[name] != after[name]} == {
        "logreg-seed0.json",
        "broken-seed0.json",
    }
    # `bag8` is a copy of the default's run here: it follows that run's rerun.
    assert main([*SYNTHETIC_ARGS, "--out", str(out), "--rerun", "mlp"]) == 1
    latest = {path.name: path.stat().st_mtime_ns for path in results}
    assert {name for name in again if latest[name] != again[name]} == {
        "mlp-seed0.json",
        "bag8-seed0.json",
        "broken-seed0.json",
    }
    with pytest.raises(SystemExit, match="not among the models"):
        main([*SYNTHETIC_ARGS, "--out", str(out), "--rerun", "catboost-tuned"])
    assert main([*SYNTHETIC_ARGS, "--out", str(out), "--rerun", "fast", "--keep-checkpoints"]) == 1
    kept = out / "tensorboard" / "default" / "fast-seed0" / "checkpoints"
    assert (kept / "last.ckpt").is_file() and len(list(kept.glob("epoch*.ckpt"))) == 1


@pytest.mark.slow
@pytest.mark.real_data
def test_quick_benchmark_on_the_real_datasets(real_data_dir, tmp_path):
    """Real files end to end; every model's own run is covered on the synthetic book above,
    so the slowest baselines (CatBoost's 1,000 rounds) are left out here."""
    models = ["mlp", "logreg", "lightgbm"]
    args = ["--quick", "--threads=1", "--data-dir", str(real_data_dir), "--out", str(tmp_path)]
    assert main([*args, "--models", *models]) == 0

    runs = pd.read_csv(tmp_path / "results.csv")
    assert len(runs) == 2 * len(models)
    assert (runs["status"] == "ok").all()
    _check_scores(runs)
    by_dataset = runs.groupby("dataset")
    # german's default bags eight networks, each on 7/8 of the 800 non-test rows.
    rows = runs.set_index(["dataset", "model"])["train_rows"].to_dict()
    assert rows == {
        **{("german", model): 640 for model in models},
        ("german", "mlp"): 700,
        **{("heloc", model): 6693 for model in models},
    }
    assert (by_dataset["roc_auc"].min() > pd.Series({"german": 0.65, "heloc": 0.72})).all()


@pytest.mark.slow
def test_a_bad_dataset_fails_once_before_its_runs_and_a_derived_one_runs(tmp_path, capsys):
    configs = shutil.copytree(CONFIGS, tmp_path / "configs")
    default = (configs / "default.yaml").read_text()
    (configs / "wrong_target.yaml").write_text(default.replace("target: default", "target: gone"))
    out = tmp_path / "out"
    args = ["--datasets", "wrong_target", "default@1k", "--models", "logreg", "--seeds=2"]
    args += ["--threads=1", "--data-args=--data.synthetic_rows=3000"]

    assert main([*args, "--config-dir", str(configs), "--out", str(out)]) == 1

    console = capsys.readouterr().out
    assert console.count("'gone'") == 1  # the data error, printed once
    runs = pd.read_csv(out / "results.csv")
    wrong = runs[runs["dataset"] == "wrong_target"]
    assert len(wrong) == 2 and (wrong["status"] == "failed").all()
    assert wrong["error"].str.contains("DataValidationError: .*'gone'").all()
    # Not run: only the data check left a log.
    assert not list((out / "runs" / "wrong_target").glob("*.log"))
    assert "'gone'" in (out / "data-checks" / "wrong_target.log").read_text()
    derived = runs[runs["dataset"] == "default@1k"]
    assert (derived["status"] == "ok").all(), derived["error"].tolist()
    assert (derived["train_rows"] == 640).all()  # 64 % of the 1,000 sampled rows
    summary = (out / "summary.md").read_text()
    robustness = summary.split("## Robustness suite (derived datasets)")[1]
    assert "| default@1k | logreg | 2 |" in robustness
    assert summary.count("failed: wrong_target") == 1
    # No network ran, so there is no paired comparison to show, not an empty table of one.
    assert "Paired comparison" not in summary and "our model - best baseline" not in console


def test_every_robustness_dataset_names_a_config_and_its_sample():
    for name in ROBUSTNESS:
        base, overrides = derived_dataset(name)
        assert (CONFIGS / f"{base}.yaml").is_file(), name
        assert len(overrides) == name.count("@"), name
        assert is_derived(name), name
    assert derived_dataset("gmsc@2pct") == ("gmsc", ("--data.sample_positive_rate=0.02",))
    assert derived_dataset("taiwan@3k@5pct") == (
        "taiwan",
        ("--data.sample_rows=3000", "--data.sample_positive_rate=0.05"),
    )
    assert derived_dataset("credit_risk@1k@noise") == (
        "credit_risk",
        ("--data.sample_rows=1000", "--data.noise_columns=35"),
    )
    assert derived_dataset("taiwan") == ("taiwan", ())
    with pytest.raises(SystemExit, match="unknown modifier '3x'"):
        derived_dataset("taiwan@3x")
    # Refused with the names, before any run, rather than as failed runs of internal options.
    with pytest.raises(SystemExit, match="@0k samples no rows"):
        derived_dataset("german@0k")
    for rate in ("0pct", "100pct"):
        with pytest.raises(SystemExit, match=f"@{rate} is not a default rate a sample can have"):
            derived_dataset(f"german@{rate}")


def test_scoreboard_metrics_are_the_reports_own_headline_first():
    report = binary_report(torch.tensor([0.1, 0.6, 0.8]), torch.tensor([0, 1, 1]), threshold=0.5)
    assert METRICS[0] == "roc_auc"
    assert sorted(METRICS) == sorted(report)


def _runs(rows: list[tuple[str, int, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"dataset": "d", "model": model, "seed": seed, "roc_auc": auc, "status": status}
            for model, seed, auc, status in rows
        ]
    )


def test_paired_comparison_against_the_best_baseline_over_shared_seeds():
    mine = [0.80, 0.82, 0.79, 0.81]
    best = [0.78, 0.83, 0.76, 0.80]
    rows = [("mlp", seed, auc, "ok") for seed, auc in enumerate(mine)]
    rows += [("hgb", seed, auc, "ok") for seed, auc in enumerate(best)]
    rows += [("logreg", seed, 0.70, "ok") for seed in range(4)]
    rows += [("mlp", 4, np.nan, "failed"), ("hgb", 4, 0.99, "ok")]  # unpaired: left out
    (row,) = paired_comparison(_runs(rows), ours=["mlp"], baselines=["logreg", "hgb"]).to_dict(
        "records"
    )

    interval = stats.ttest_rel(mine, best).confidence_interval(0.95)
    assert row["best_baseline"] == "hgb"
    assert row["seeds"] == 4 and row["seeds_won"] == 3
    assert row["mean_difference"] == pytest.approx(np.mean(np.subtract(mine, best)))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((interval.low, interval.high))


def test_the_best_baseline_is_chosen_on_the_seeds_every_baseline_completed():
    """lightgbm fails the hard seed 1, where logreg still scores: on its surviving seed
    alone it would look best."""
    rows = [("mlp", 0, 0.80, "ok"), ("mlp", 1, 0.70, "ok")]
    rows += [("logreg", 0, 0.79, "ok"), ("logreg", 1, 0.69, "ok")]
    rows += [("lightgbm", 0, 0.78, "ok"), ("lightgbm", 1, np.nan, "failed")]
    (row,) = paired_comparison(_runs(rows), ours=["mlp"], baselines=["logreg", "lightgbm"]).to_dict(
        "records"
    )
    assert row["best_baseline"] == "logreg" and row["seeds"] == 2


def test_every_model_is_held_to_the_best_of_the_other_baselines_over_all_datasets():
    """Ours against every baseline, each baseline against the others only (never itself or
    our models): the worst dataset, the mean, and the datasets behind beyond the noise."""
    aucs = {
        ("a", "mlp"): [0.80, 0.81, 0.80],
        ("a", "catboost"): [0.82, 0.83, 0.83],  # ahead of mlp on every seed
        ("a", "lightgbm"): [0.79, 0.80, 0.78],
        ("b", "mlp"): [0.90, 0.91, 0.90],
        ("b", "catboost"): [0.88, 0.90, 0.87],
        ("b", "lightgbm"): [0.92, 0.95, 0.89],  # ahead of catboost by 0.037, noisily
    }
    runs = pd.concat(
        [
            _runs([(model, seed, auc, "ok") for seed, auc in enumerate(values)]).assign(
                dataset=dataset
            )
            for (dataset, model), values in aucs.items()
        ]
    )
    cases = worst_cases(
        runs, models=["mlp", "catboost", "lightgbm"], baselines=["catboost", "lightgbm"]
    )
    by_model = cases.set_index("model").to_dict("index")

    mlp = by_model["mlp"]
    assert (mlp["worst_dataset"], mlp["worst_against"]) == ("a", "catboost")
    assert mlp["worst_difference"] == pytest.approx(-0.0233, abs=1e-4)
    assert mlp["behind_beyond_noise"] == 1 and mlp["ahead_or_level"] == 0  # b: noisy
    catboost = by_model["catboost"]  # against lightgbm alone
    assert (catboost["worst_dataset"], catboost["worst_against"]) == ("b", "lightgbm")
    assert catboost["worst_difference"] == pytest.approx(-0.0367, abs=1e-4)
    assert catboost["ahead_or_level"] == 1 and catboost["behind_beyond_noise"] == 0
    assert catboost["mean_difference"] == pytest.approx(0.0, abs=1e-9)  # +0.0367 on a
    assert by_model["lightgbm"]["worst_against"] == "catboost"
    assert "| mlp | 2 | -0.0200 | 0 | 1 | a | catboost | -0.0233 |" in worst_cases_markdown(cases)


def test_fit_time_ratio_against_lightgbm_over_shared_seeds():
    runs = _runs(
        [("mlp", 0, 0.8, "ok"), ("mlp", 1, 0.8, "ok"), ("mlp", 2, np.nan, "failed")]
        + [("lightgbm", seed, 0.8, "ok") for seed in range(3)]
    )
    runs["fit_seconds"] = [10.0, 20.0, np.nan, 1.0, 2.0, 100.0]  # seed 2 is unpaired
    (row,) = fit_time_ratios(runs, ours=["mlp"]).to_dict("records")
    assert (row["model_fit_seconds"], row["reference_fit_seconds"]) == (15.0, 1.5)
    assert row["ratio"] == pytest.approx(10.0) and row["seeds"] == 2
    runs["fit_seconds"] = [10.0, 20.0, np.nan, 0.12, 0.13, 100.0]
    ratios = fit_time_ratios(runs, ours=["mlp"])
    paired = paired_comparison(runs, ours=["mlp"], baselines=["lightgbm"])
    table = markdown_tables(summarise(runs), paired, ratios)
    assert "| mlp | 15.0 | 0.12 | 120.0x | 2 |" in table  # the ratio reads back from its cells


def test_summary_averages_successful_seeds_and_counts_failures():
    rows = [("mlp", 0, 0.8, "ok"), ("mlp", 1, 0.9, "ok"), ("mlp", 2, np.nan, "failed")]
    (row,) = summarise(_runs(rows)).to_dict("records")

    assert (row["seeds_ok"], row["seeds_failed"]) == (2, 1)
    assert row["roc_auc_mean"] == pytest.approx(0.85)
    assert row["roc_auc_std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))


def test_a_stored_result_is_reused_from_another_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two checkouts of the same code (a git worktree beside the main one) give a run the
    same fingerprint, each computing it from its own location; another config differs."""

    def fingerprint(checkout: Path, config: str = "taiwan.yaml") -> dict:
        monkeypatch.setattr(runner, "CHECKOUT", checkout)
        return runner.RunSpec(
            dataset="taiwan",
            model="fast",
            seed=0,
            config=str(checkout / "configs" / config),
            out_dir=str(checkout / "benchmark_results"),
            network_args=(f"--model={checkout / 'configs/shared/model_fast.yaml'}",),
        ).fingerprint()

    main_checkout = fingerprint(Path("/home/analyst/loan-default"))
    assert main_checkout["config"] == "configs/taiwan.yaml"
    assert main_checkout["network_args"] == ["--model=configs/shared/model_fast.yaml"]
    assert fingerprint(Path("/home/analyst/loan-default-worktree")) == main_checkout
    assert fingerprint(Path("/home/analyst/loan-default-worktree"), "heloc.yaml") != main_checkout


@pytest.mark.slow
def test_an_edited_config_is_run_again_and_a_result_stored_without_a_digest_is_kept(
    tmp_path, capsys
):
    configs = shutil.copytree(CONFIGS, tmp_path / "configs")
    out = tmp_path / "out"
    args = ["--datasets", "default", "--models", "logreg", "--seeds=1", "--threads=1"]
    args += ["--data-args=--data.synthetic_rows=3000", "--config-dir", str(configs)]
    args += ["--out", str(out)]
    stored = out / "runs" / "default" / "logreg-seed0.json"

    assert main(args) == 0
    first = stored.stat().st_mtime_ns
    assert main(args) == 0
    assert stored.stat().st_mtime_ns == first  # the same inputs: reused
    config = configs / "default.yaml"
    config.write_text(config.read_text().replace("data:", "data:\n  max_inferred_levels: 12"))
    assert main(args) == 0
    assert stored.stat().st_mtime_ns != first  # an edited config: run again
    edited = stored.read_text()
    with pytest.raises(SystemExit, match="a file, not a folder to store the runs in"):
        main([*args[:-1], str(stored)])

    # Other settings would replace the stored run: refused before anything runs.
    with pytest.raises(
        SystemExit, match=r"default logreg seed 0 \(threads 1 -> 2\).*--rerun logreg"
    ):
        main([*args, "--threads=2"])
    assert stored.read_text() == edited

    # Part of the folder's runs: the tables cover them, and the console says what they omit.
    capsys.readouterr()
    assert main([*args, "--models", "lightgbm"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "the tables cover this command's 1 runs; the folder holds 1 more stored runs" in printed
    record = json.loads(stored.read_text())
    del record["spec"]["inputs"]  # as results stored before the digest existed
    stored.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(args) == 0
    assert "stored before runs recorded their config's and data's digest" in capsys.readouterr().out

    # A run records the project code it executed; code changed since is named, not rerun.
    assert {"benchmarking/baselines.py", "datamodules/loan_datamodule.py"} <= set(record["code"])
    record["code"]["benchmarking/baselines.py"] = "0" * 16
    stored.write_text(json.dumps(record))
    tampered = stored.stat().st_mtime_ns
    assert main(args) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "its code has changed since: benchmarking/baselines.py; --rerun logreg" in printed
    assert stored.stat().st_mtime_ns == tampered  # reused as stored
    summary = (out / "summary.md").read_text()
    assert "- code: 1 runs (logreg 1) were computed by code this checkout has changed" in summary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variant", "mlp=--model.net.dropout=0.5"], "a model of that name exists"),
        (["--variant", "fast=--model.net.dropout=0.5"], "a model of that name exists"),
        (["--variant", "small=--data.sample_rows=300"], "would not be paired"),
        (["--mlp-args=--data.seed=3"], "would not be paired"),
        (["--models", "logreg", "lightgbm", "logreg"], r"names \['logreg'\] more than once"),
        (["--datasets", "taiwan@1k", "taiwan@1000"], "name the same dataset"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--timeout", "0"], "--timeout must be a positive number"),
    ],
)
def test_a_plan_that_could_not_be_compared_fairly_is_refused(args, message):
    with pytest.raises(SystemExit, match=message):
        main(["--models", "logreg", "--datasets", "taiwan", *args])


def test_an_abbreviated_option_is_refused_naming_the_option_meant():
    # argparse would take --dataset for --datasets; whole options, as the training CLI's.
    with pytest.raises(ArgumentError, match=r"taiwan \(--dataset: did you mean --datasets\?\)"):
        main(["--models", "logreg", "--dataset", "taiwan"])


def test_ctrl_c_says_where_the_finished_runs_are_and_how_to_go_on(monkeypatch, tmp_path, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("benchmarking.suite.run_all", interrupted)
    assert main(["--models", "logreg", "--datasets", "default", "--out", str(tmp_path)]) == 130
    printed = " ".join(capsys.readouterr().out.split())
    assert f"the finished runs are stored in {tmp_path / 'runs'}" in printed
    assert "the same command continues with the others" in printed


def test_a_stopped_process_is_reported_with_the_cause_below_its_error_line(tmp_path):
    """jsonargparse writes the cause on indented lines under "error: Parser key ..."."""
    log = tmp_path / "check.log"
    log.write_text(
        "usage: main.py [-h] ...\n"
        'error: Parser key "trainer":\n'
        "  Unable to load config 'shared/trainer.yaml'\n"
        "  - Expected a dict\n"
        "\n"
        "more output\n"
    )
    reason = _no_result("data check", 2, log)
    assert reason.startswith(
        'the data check stopped: error: Parser key "trainer": '
        "Unable to load config 'shared/trainer.yaml' - Expected a dict"
    )


@pytest.mark.slow
def test_an_override_the_command_line_refuses_is_reported_once_with_its_reason(tmp_path, capsys):
    args = ["--datasets", "default", "--models", "typo", "--seeds=2", "--threads=1"]
    args += ["--variant", "typo=--model.net.dropoutt=0.2", "--out", str(tmp_path)]
    assert main([*args, "--data-args=--data.synthetic_rows=3000"]) == 1
    runs = pd.read_csv(tmp_path / "results.csv")
    assert (
        runs["error"] == "ArgumentError: unrecognized arguments: --model.net.dropoutt=0.2 "
        "(--model.net.dropoutt: did you mean --model.net.dropout?)"
    ).all()
    # The second seed would be refused alike: recorded without starting a process.
    logs = sorted(path.name for path in (tmp_path / "runs" / "default").glob("*.log"))
    assert logs == ["typo-seed0.log"]
    assert "default typo seed 1: not run, its command line is default typo seed 0's" in " ".join(
        capsys.readouterr().out.split()
    )
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("unrecognized arguments: --model.net.dropoutt") == 1
    assert "typo seed 0, typo seed 1" in summary
