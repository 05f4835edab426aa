"""Hyperparameter search with Optuna over the training CLI's config (`scripts/tune.py`).

`space` reads a search space file, `objective` runs one trial as a normal fit, `study`
keeps studies in a database shared by workers, `report` writes what a person reads, and
`tune` ties them into the command.
"""
