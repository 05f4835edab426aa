from dataclasses import replace

import pandas as pd

from risk.gains import CutoffTradeoff
from risk.model_card import ModelCard, markdown_table, render_model_card


def _card() -> ModelCard:
    metrics = pd.DataFrame(
        {
            "metric": ["roc_auc", "gini", "ks", "brier", "calibration_error"],
            "estimate": [0.85, 0.70, 0.55, 0.12, 0.02],
            "low": [0.83, 0.66, 0.51, 0.11, 0.015],
            "high": [0.87, 0.74, 0.59, 0.13, 0.03],
        }
    )
    gains = pd.DataFrame(
        {
            "band": [1, 2],
            "score_from": [0.5, 0.1],
            "score_to": [0.9, 0.5],
            "rows": [1000, 1000],
            "defaults": [300.0, 20.0],
        }
    )
    training = pd.DataFrame(
        {"variable": ["grade"], "kind": ["categorical"], "rows": [2000], "missing": [0.01]}
    )
    return ModelCard(
        title="loans.csv",
        data={"file": "loans.csv", "rows": "2,500"},
        settings={"net/dropout": 0.25, "net/hidden_sizes": "[256, 256]"},
        metrics=metrics,
        resamples=500,
        ks_cutoff=0.31,
        temperature=1.2,
        tradeoff=CutoffTradeoff(0.4, 0.9, 0.45, 0.05, 0.5),
        gains=gains,
        training=training,
    )


def test_card_has_every_section_with_its_numbers():
    text = render_model_card(_card())
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        "# Model card: loans.csv",
        "## Data",
        "## Model",
        "## Test metrics",
        "## Discrimination",
        "## Calibration",
        "## Decision threshold",
        "## Gains table (test)",
        "## Training distribution",
    ]
    assert "| roc_auc | 0.8500 | [0.8300, 0.8700] |" in text
    assert "Gini 0.7000 (95 % interval 0.6600-0.7400)" in text
    assert "reached at default probability >= 0.3100" in text
    assert "approves 90.0% of applicants and declines 45.0% of the defaulters" in text
    assert "| 1 | 0.5000 | 0.9000 | 1,000 | 300 |" in text
    assert "| grade | categorical | 2,000 | 1.0% |" in text


def test_a_threshold_that_declines_nobody_says_so_instead_of_a_nan_rate():
    card = replace(_card(), tradeoff=CutoffTradeoff(0.9, 1.0, 0.0, 0.3, float("nan")))
    text = " ".join(render_model_card(card).split())
    assert "nan" not in text
    assert "declines no applicant: every test score is below it" in text
    assert "they default at a rate of 30.00%" in text


def test_card_says_how_long_the_weights_trained_and_when_the_trainer_set_the_budget():
    fitted = {"lr_schedule": "cosine", "training_epochs": 16, "trainer/max_epochs": 50}
    card = replace(_card(), settings=fitted, saved_epoch=6)
    text = " ".join(render_model_card(card).split())
    assert (
        "The saved weights are those of epoch 6 (counted from 0, as in the checkpoint's file "
        "name: 7 epochs of training), with a cosine learning rate over a budget of 16 epochs."
        in text
    )
    limited = replace(card, settings=fitted | {"training_epochs": 2, "trainer/max_epochs": 2})
    assert "budget of 2 epochs, the trainer's limit (`--trainer.max_epochs 2`)." in " ".join(
        render_model_card(limited).split()
    )
    small = {"lr_schedule": "constant", "training_epochs": "until early stopping"}
    bag = replace(card, settings=small, saved_epoch=None, fold_epochs=(12, 9))
    assert (
        "Each network of the bag trained 12, 9 epochs (in fold order), keeping its best epoch "
        "on its held-out fold, with a constant learning rate until early stopping."
        in " ".join(render_model_card(bag).split())
    )
    # A checkpoint from before fits were recorded: no sentence rather than a guess.
    assert "saved weights" not in render_model_card(_card())


def test_markdown_table_escapes_pipes_and_aligns_columns():
    table = markdown_table(pd.DataFrame({"level": ["a|b"], "share": [0.25]}), {"share": "{:.0%}"})
    assert table.splitlines() == ["| level | share |", "| --- | --- |", "| a\\|b | 25% |"]
