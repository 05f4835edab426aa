"""Seeded synthetic files of many coded fields: stand-ins for credit data of 30+ categoricals.

Credit files from bureaus and lenders' systems often hold dozens of coded fields (branch,
product, employer, postcode, channel), some with thousands of levels, and little else.
None of the public sets here has that shape, and a held-back set of it is where the
default once trailed CatBoost most (by 0.024 ROC-AUC). These two generators give the
robustness suite that shape with known default probabilities, so it needs no download:

* ``generate_coded_fields`` (strong signal; Bayes ROC-AUC 0.84 on 50,000 rows of seed 0):
  32 string categoricals whose level counts are drawn from 3, 8, 30, 300 and 3,000 (those
  above 30 Zipf-distributed, so a few levels hold most rows and most are rare), 8 numbers;
  main effects of six categoricals and three numbers, eight parity interactions of pairs
  (``c06`` x ``c07`` to ``c20`` x ``c21``) and one of a triple; about 44 % defaults.
  Combinations of categoricals carry much of the signal, as in CatBoost's combinations.
* ``generate_weak_coded_fields`` (weak signal; Bayes ROC-AUC 0.71 on 50,000 rows of seed
  1, where the held-back set's models scored 0.62-0.65): small per-level risks on twelve
  categoricals (four of 300 or 3,000 levels), three numbers, four parity interactions of
  pairs, thirteen categoricals of noise; 26 % defaults.

Both keep the target in ``default`` and return `SyntheticLoanBook`, whose probabilities
are the Bayes ceiling. The default network's results on both are in BENCHMARKS.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from datamodules.synthetic import TARGET_COLUMN, SyntheticLoanBook, check_row_count

N_CATEGORICALS = 32
N_NUMBERS = 8
LEVEL_COUNTS = (3, 8, 30, 300, 3000)
# Zipf's exponent for the wide columns: about 1,950 of 3,000 levels are seen in 50,000 rows.
_ZIPF_EXPONENT = 1.3
_WEAK_DEFAULT_RATE = 0.26


def _codes(rng: np.random.Generator, n_rows: int, level_counts: list[int]) -> np.ndarray:
    """Per column, uniform codes for narrow columns, Zipf-distributed ones beyond 30 levels."""
    return np.column_stack(
        [
            np.minimum(rng.zipf(_ZIPF_EXPONENT, n_rows) - 1, levels - 1)
            if levels > 30
            else rng.integers(0, levels, n_rows)
            for levels in level_counts
        ]
    )


def _parity(codes: np.ndarray, *columns: int) -> np.ndarray:
    """1 where the columns' codes sum to an even number: an interaction with no main effect."""
    return (codes[:, list(columns)].sum(axis=1) % 2 == 0).astype(float)


def _frame(codes: np.ndarray, numbers: np.ndarray, target: np.ndarray) -> pd.DataFrame:
    columns: dict[str, object] = {
        f"c{j:02d}": [f"L{code}" for code in codes[:, j]] for j in range(codes.shape[1])
    }
    columns.update({f"x{k}": numbers[:, k].round(4) for k in range(numbers.shape[1])})
    columns[TARGET_COLUMN] = target
    return pd.DataFrame(columns)


def generate_coded_fields(n_rows: int = 50_000, seed: int = 0) -> SyntheticLoanBook:
    """Many coded fields, strong signal, much of it in combinations of categoricals.

    Identical ``(n_rows, seed)`` give identical files.
    """
    n_rows = check_row_count(n_rows)
    rng = np.random.default_rng(seed)
    level_counts = [int(levels) for levels in rng.choice(LEVEL_COUNTS, N_CATEGORICALS)]
    codes = _codes(rng, n_rows, level_counts)
    numbers = rng.normal(size=(n_rows, N_NUMBERS))
    logit = -3.3 + 0.6 * numbers[:, 0] - 0.4 * numbers[:, 1] + 0.3 * np.abs(numbers[:, 2])
    for column in range(6):
        logit += rng.normal(0, 0.5, level_counts[column])[codes[:, column]]
    for pair in range(8):
        logit += 0.5 * _parity(codes, 6 + 2 * pair, 7 + 2 * pair)
    triple = (codes[:, 6] % 2 == 0) & (codes[:, 7] % 2 == 0) & (codes[:, 22] % 2 == 0)
    logit += 0.6 * triple
    probability = expit(logit)
    target = (rng.random(n_rows) < probability).astype(np.int64)
    return SyntheticLoanBook(_frame(codes, numbers, target), probability)


def generate_weak_coded_fields(n_rows: int = 50_000, seed: int = 0) -> SyntheticLoanBook:
    """Many coded fields, weak signal spread thinly over wide columns, most columns noise.

    Identical ``(n_rows, seed)`` give identical files; the intercept is solved so that the
    mean default probability is 26 %.
    """
    n_rows = check_row_count(n_rows)
    rng = np.random.default_rng(seed)
    level_counts = [*LEVEL_COUNTS * 6, 8, 3000]
    codes = _codes(rng, n_rows, level_counts)
    numbers = rng.normal(size=(n_rows, N_NUMBERS))
    logit = 0.2 * numbers[:, 0] - 0.12 * numbers[:, 1] + 0.1 * np.abs(numbers[:, 2])
    for column in range(12):
        logit += rng.normal(0, 0.22, level_counts[column])[codes[:, column]]
    for pair in ((12, 13), (14, 15), (16, 17), (0, 20)):
        logit += 0.25 * _parity(codes, *pair)
    logit += brentq(lambda shift: expit(logit + shift).mean() - _WEAK_DEFAULT_RATE, -10, 10)
    probability = expit(logit)
    target = (rng.random(n_rows) < probability).astype(np.int64)
    return SyntheticLoanBook(_frame(codes, numbers, target), probability)
