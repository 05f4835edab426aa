"""The options of the report and submission callbacks: a mistake names the option."""

from __future__ import annotations

import pytest

from contracts.errors import ConfigurationError
from lightning_modules.callbacks import MetricsReport, SubmissionWriter


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"pdo": 0.0}, "submission.pdo"),
        ({"base_odds": -1.0}, "submission.base_odds"),
        ({"reason_codes": -2}, "submission.reason_codes"),
    ],
)
def test_submission_options_are_checked_up_front(options, named):
    with pytest.raises(ConfigurationError, match=named):
        SubmissionWriter("out.csv", points=True, **options)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"n_bands": 0}, "report.n_bands"),
        ({"bootstrap_resamples": 0}, "report.bootstrap_resamples"),
    ],
)
def test_report_options_are_checked_up_front(options, named):
    with pytest.raises(ConfigurationError, match=named):
        MetricsReport(**options)
