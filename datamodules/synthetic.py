"""Seeded synthetic loan book whose true default probabilities are known.

The project's embedded default dataset: it needs no files or network, and
because every target is drawn from a known probability the Bayes-optimal
ROC-AUC/accuracy can be reported beside a model's test metrics.

Applicants (all draws come from one ``np.random.default_rng(seed)``):

* A hidden credit quality ``q ~ N(0, 1)`` (slightly better with age) drives
  unemployment, delinquencies, revolving utilisation, debt-to-income and the
  lender's interest rate.  It is never a column, so a model sees it only
  through those noisy proxies.
* ``age`` is 18 + Gamma(3.2, 7.5) years, capped at 80.  ``employment_status``
  is a per-row softmax over age (students young, retirees old) and ``q``
  (poor credit -> more unemployment).
* ``annual_income`` is log-normal around 52k: an age hump peaking at 50,
  offsets for employment and region (metro/coastal richer), a little ``q``,
  and a wider spread for the self-employed.  ``employment_length_years`` is
  NaN for the unemployed and students, otherwise exponential (longer when
  older) and capped at the years since 18.
* ``home_ownership`` depends on age and income; ``loan_purpose`` on
  employment (self-employed -> small_business, students -> education) and
  ownership (owners -> home_improvement); ``loan_amount`` on income and
  purpose; 60-month terms are likelier for large loans; ``interest_rate`` is
  13 - 3.5 q + 1.8 [60 months] + N(0, 1) percent; ``credit_history_years``
  is a Beta(4, 1.8) share of adult life; ``open_accounts`` is Poisson, rising
  with history; ``delinquencies_2y`` is Poisson(exp(-2.2 - 0.9 q)).
* Missing values are MCAR given the row: income 4% (7% for the
  self-employed), employment length 3% on top of the structural NaNs,
  utilisation 3%, debt-to-income 2%, home ownership 1%.

Default.  ``default_probability = sigmoid(logit)``, where the logit is a sum
of the terms below computed from the OBSERVED row (missing values included),
so it is exactly P(default | features) and its ROC-AUC is the Bayes ceiling:

* base -4.05 and a U-shape in age, ``0.0018 (age - 44)^2``;
* log income, ``-0.9 min(log(income / 50k), 0.8)`` (the benefit saturates
  near 110k).  An unreported income instead adds +1.0: applicants who hide
  income are riskier, so missingness itself is a signal;
* loan-to-income ``0.9 min(LTI, 1.5)`` (0 when income is unreported), and
  +0.8 for small_business loans with LTI > 0.3;
* debt-to-income ``0.6 DTI`` plus a jump of +1.2 above 0.43 (missing: +0.25);
* utilisation ``0.6 U`` plus +0.8 above 0.9, and +0.8 more when the
  applicant is also under 30 (missing: +0.2);
* delinquencies saturate, ``1.6 (1 - exp(-1.2 d))``;
* interest rate ``0.06 (r - 13)`` with a kink ``+0.15 max(r - 18, 0)``;
* employment: unemployed +0.6, student +0.3, self-employed +0.15, and
  unemployed on a 60-month term +1.0; tenure under one year +0.3;
* 60-month term +0.25; credit history under 2 years +0.35; at most 2 or more
  than 15 open accounts +0.2;
* purpose offsets (small_business +0.4, medical +0.2, education +0.15,
  debt_consolidation/other +0.1, home_improvement -0.15, car -0.25) and
  ownership offsets (RENT +0.15, MORTGAGE -0.1, OWN -0.05, OTHER +0.2);
* regional economies (south/mountain +0.15, west +0.05, coastal -0.05,
  metro -0.1), and +0.5 for self-employed applicants in the seasonal
  south/mountain economies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TARGET_COLUMN = "default"
ID_COLUMN = "loan_id"
CATEGORICAL_COLUMNS: tuple[str, ...] = (
    "employment_status",
    "home_ownership",
    "loan_purpose",
    "region",
)

EMPLOYMENT = ("employed", "self_employed", "unemployed", "retired", "student")
HOME_OWNERSHIP = ("RENT", "MORTGAGE", "OWN", "OTHER")
PURPOSES = (
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "car",
    "medical",
    "small_business",
    "education",
    "other",
)
REGIONS = ("north", "south", "east", "west", "central", "coastal", "mountain", "metro")

_REGION_SHARE = np.array([0.13, 0.16, 0.12, 0.12, 0.14, 0.11, 0.07, 0.15])
_REGION_INCOME = np.array([0.0, -0.12, 0.05, 0.08, -0.05, 0.15, -0.1, 0.25])
_REGION_RISK = np.array([0.0, 0.15, 0.0, 0.05, 0.0, -0.05, 0.15, -0.1])
_EMPLOYMENT_INCOME = np.array([0.0, 0.05, -1.1, -0.45, -1.2])
_EMPLOYMENT_RISK = np.array([0.0, 0.15, 0.6, 0.0, 0.3])
_PURPOSE_LOGIT = np.log([0.45, 0.2, 0.08, 0.07, 0.04, 0.03, 0.03, 0.1])
_PURPOSE_AMOUNT = np.array([0.0, -0.15, 0.2, 0.1, -0.4, 0.5, -0.1, -0.3])
_PURPOSE_RISK = np.array([0.1, 0.0, -0.15, -0.25, 0.2, 0.4, 0.15, 0.1])
_OWNERSHIP_RISK = np.array([0.15, -0.1, -0.05, 0.2])
_SELF_EMPLOYED, _UNEMPLOYED, _STUDENT = (
    EMPLOYMENT.index(status) for status in ("self_employed", "unemployed", "student")
)
_SMALL_BUSINESS = PURPOSES.index("small_business")
_OWNERS = [HOME_OWNERSHIP.index("MORTGAGE"), HOME_OWNERSHIP.index("OWN")]
_SEASONAL_REGIONS = [REGIONS.index("south"), REGIONS.index("mountain")]
_LABELS = dict(
    zip(CATEGORICAL_COLUMNS, (EMPLOYMENT, HOME_OWNERSHIP, PURPOSES, REGIONS), strict=True)
)


@dataclass(frozen=True)
class SyntheticLoanBook:
    """A generated book plus the probabilities its targets were drawn from."""

    frame: pd.DataFrame
    default_probability: np.ndarray


def _sample_rows(rng: np.random.Generator, logits: np.ndarray) -> np.ndarray:
    """Draw one category index per row from row-specific softmax logits."""
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(len(logits))[:, None] * cumulative[:, -1:]
    return (u > cumulative).sum(axis=1)


def _mask(rng: np.random.Generator, values: np.ndarray, rate: float | np.ndarray) -> np.ndarray:
    """Blank a random share of a float column (MCAR, so the Bayes rule stays exact)."""
    return np.where(rng.random(len(values)) < rate, np.nan, values)


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> pd.Index:
    """Map category codes to pandas strings in one vectorised take; code -1 becomes NaN."""
    return pd.Index(labels, dtype="str").take(codes, allow_fill=True, fill_value=np.nan)


def _applicants(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw fields in causal order so each can depend on those before it (strings as codes)."""
    age = np.minimum(18 + np.floor(rng.gamma(3.2, 7.5, n)), 80)
    quality = rng.normal(0, 1, n) + 0.01 * (age - 40)
    adult_years = age - 18
    employment = _sample_rows(
        rng,
        np.column_stack(
            [
                np.full(n, 2.0),
                0.012 * adult_years,
                -0.5 - 0.5 * quality,
                0.3 * (age - 64),
                2.0 - 0.45 * adult_years,
            ]
        ),
    )
    region = rng.choice(len(REGIONS), n, p=_REGION_SHARE)
    noise = np.where(employment == _SELF_EMPLOYED, 0.7, 0.45) * rng.normal(0, 1, n)
    log_income = (
        np.log(52_000)
        - 0.0009 * (age - 50) ** 2
        + _EMPLOYMENT_INCOME[employment]
        + _REGION_INCOME[region]
        + 0.12 * quality
        + noise
    )
    income = np.round(np.clip(np.exp(log_income), 6_000, 1_500_000), -2)
    tenure = np.minimum(rng.exponential(2 + 0.12 * adult_years), adult_years)
    tenure = np.where(np.isin(employment, [_UNEMPLOYED, _STUDENT]), np.nan, np.round(tenure, 1))
    rel_income = np.log(income / 50_000)
    ownership = _sample_rows(
        rng,
        np.column_stack(
            [
                1.2 - 0.035 * adult_years,
                -0.8 + 0.8 * rel_income + 0.04 * adult_years - 0.0006 * adult_years**2,
                -3.0 + 0.06 * adult_years,
                np.where(age < 23, -2.3, -2.8),
            ]
        ),
    )
    purpose = _sample_rows(
        rng,
        _PURPOSE_LOGIT
        + np.column_stack(
            [
                np.zeros((n, 2)),
                1.0 * np.isin(ownership, _OWNERS)[:, None],
                np.zeros((n, 2)),
                1.5 * (employment == _SELF_EMPLOYED)[:, None],
                2.0 * (employment == _STUDENT)[:, None],
                np.zeros((n, 1)),
            ]
        ),
    )
    log_amount = (
        np.log(12_000) + 0.45 * rel_income + _PURPOSE_AMOUNT[purpose] + rng.normal(0, 0.5, n)
    )
    amount = np.round(np.clip(np.exp(log_amount), 1_000, 40_000) / 25) * 25
    term = np.where(rng.random(n) < 1 / (1 + np.exp(1.6 - 1.2 * np.log(amount / 12_000))), 60, 36)
    rate = np.clip(13 - 3.5 * quality + 1.8 * (term == 60) + rng.normal(0, 1.0, n), 5.3, 30.99)
    history = np.maximum(np.round(adult_years * rng.beta(4, 1.8, n), 1), 0.1)
    utilisation_logit = -0.2 - 0.9 * quality - 0.02 * (age - 40) + rng.normal(0, 0.8, n)
    utilisation = 1.1 / (1 + np.exp(-utilisation_logit))
    utilisation += (rng.random(n) < 0.03) * rng.uniform(0, 0.4, n)
    dti = rng.gamma(3.5, 0.06, n) * np.exp(-0.25 * quality - 0.2 * rel_income)
    return {
        "age": age.astype(np.int64),
        "annual_income": _mask(rng, income, np.where(employment == _SELF_EMPLOYED, 0.07, 0.04)),
        "employment_status": employment,
        "employment_length_years": _mask(rng, tenure, 0.03),
        "home_ownership": np.where(rng.random(n) < 0.01, -1, ownership),
        "loan_purpose": purpose,
        "loan_amount": amount,
        "term_months": term.astype(np.int64),
        "interest_rate": np.round(rate, 2),
        "credit_history_years": history,
        "open_accounts": rng.poisson(3 + 8 * (1 - np.exp(-history / 10))).astype(np.int64),
        "delinquencies_2y": rng.poisson(np.exp(-2.2 - 0.9 * quality)).astype(np.int64),
        "revolving_utilization": _mask(rng, np.round(np.clip(utilisation, 0, 1.5), 3), 0.03),
        "debt_to_income": _mask(rng, np.round(np.clip(dti, 0, 1.5), 3), 0.02),
        "region": region,
    }


def _default_logit(c: dict[str, np.ndarray]) -> np.ndarray:
    """The documented non-linear risk score, computed from observed values only."""
    income, dti, util = c["annual_income"], c["debt_to_income"], c["revolving_utilization"]
    employment, rate, age = c["employment_status"], c["interest_rate"], c["age"]
    lti = np.nan_to_num(c["loan_amount"] / income)  # 0 when income is unreported
    seasonal = np.isin(c["region"], _SEASONAL_REGIONS) & (employment == _SELF_EMPLOYED)
    long_term = c["term_months"] == 60
    ownership = c["home_ownership"]  # -1 (unreported) carries no ownership effect
    return (
        -4.05
        + 0.0018 * (age - 44) ** 2
        + np.where(np.isnan(income), 1.0, -0.9 * np.minimum(np.log(income / 50_000), 0.8))
        + 0.9 * np.minimum(lti, 1.5)
        + 0.8 * ((c["loan_purpose"] == _SMALL_BUSINESS) & (lti > 0.3))
        + np.where(np.isnan(dti), 0.25, 0.6 * np.nan_to_num(dti) + 1.2 * (dti > 0.43))
        + np.where(
            np.isnan(util),
            0.2,
            0.6 * np.nan_to_num(util) + 0.8 * (util > 0.9) + 0.8 * ((util > 0.9) & (age < 30)),
        )
        + 1.6 * (1 - np.exp(-1.2 * c["delinquencies_2y"]))
        + 0.06 * (rate - 13)
        + 0.15 * np.maximum(rate - 18, 0)
        + _EMPLOYMENT_RISK[employment]
        + 0.25 * long_term
        + 1.0 * ((employment == _UNEMPLOYED) & long_term)
        + 0.3 * (c["employment_length_years"] < 1)
        + 0.35 * (c["credit_history_years"] < 2)
        + 0.2 * ((c["open_accounts"] <= 2) | (c["open_accounts"] > 15))
        + _PURPOSE_RISK[c["loan_purpose"]]
        + np.where(ownership >= 0, _OWNERSHIP_RISK[ownership], 0.0)
        + _REGION_RISK[c["region"]]
        + 0.5 * seasonal
    )


def check_row_count(n_rows: int) -> int:
    """`n_rows` as an int; a generator asked for a bool, a fraction or no rows raises
    `ValueError`, not an empty or truncated file."""
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise ValueError(f"n_rows must be an integer >= 1, got {n_rows!r}")
    return int(n_rows)


def generate_loan_book(n_rows: int = 100_000, seed: int = 0) -> SyntheticLoanBook:
    """Generate ``n_rows`` loans whose targets are Bernoulli draws of ``default_probability``.

    Identical ``(n_rows, seed)`` give identical books, so experiments and their Bayes
    ceilings are reproducible.  Raises ``ValueError`` unless ``n_rows`` is an integer >= 1.
    """
    n_rows = check_row_count(n_rows)
    rng = np.random.default_rng(seed)
    columns = _applicants(rng, n_rows)
    probability = 1 / (1 + np.exp(-_default_logit(columns)))
    target = (rng.random(n_rows) < probability).astype(np.int64)
    features = {
        name: _labels(values, _LABELS[name]) if name in _LABELS else values
        for name, values in columns.items()
    }
    frame = pd.DataFrame(
        {ID_COLUMN: np.arange(1, n_rows + 1, dtype=np.int64), **features, TARGET_COLUMN: target}
    )
    return SyntheticLoanBook(frame=frame, default_probability=probability)
