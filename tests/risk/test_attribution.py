import numpy as np
import pandas as pd
import pytest
import torch

from risk.attribution import column_contributions, integrated_gradients, top_reasons


def test_integrated_gradients_of_a_linear_model_are_weight_times_distance():
    """For f(x, e) = x.w + e.v + (x.w)^2 the attributions must add up to f(x) - f(ref)."""
    generator = torch.Generator().manual_seed(0)
    w, v = torch.randn(4, generator=generator), torch.randn(3, generator=generator)
    x, e = torch.randn(700, 4, generator=generator), torch.randn(700, 3, generator=generator)
    x_ref, e_ref = torch.randn(1, 4, generator=generator), torch.randn(1, 3, generator=generator)

    def linear(numeric: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        return numeric @ w + embedded @ v

    (numeric, embedded), gap = integrated_gradients(linear, (x, e), (x_ref, e_ref))
    torch.testing.assert_close(numeric, (x - x_ref) * w)
    torch.testing.assert_close(embedded, (e - e_ref) * v)
    assert float(gap.abs().max()) < 1e-4

    def curved(numeric: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        return linear(numeric, embedded) + (numeric @ w) ** 2

    (numeric, embedded), gap = integrated_gradients(curved, (x, e), (x_ref, e_ref))
    total = numeric.sum(1) + embedded.sum(1)
    torch.testing.assert_close(total, curved(x, e) - curved(x_ref, e_ref), atol=1e-4, rtol=1e-4)


def test_contributions_are_grouped_by_user_column():
    attributions = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    grouped = column_contributions(attributions, [("b",), ("a",), ("b",), ("b",)], ["a", "b"])
    assert grouped.tolist() == [[2.0, 8.0]]


def test_an_input_of_two_columns_is_shared_between_them_and_nothing_is_lost():
    """A pair's joint default rate belongs to both of its columns: half of its attribution
    goes to each, so the columns' contributions still add up to the inputs'."""
    attributions = torch.tensor([[1.0, 4.0, 3.0], [-2.0, 0.5, 1.0]])
    owners = [("term",), ("grade", "term"), ("income",)]
    grouped = column_contributions(attributions, owners, ["income", "grade", "term"])
    assert grouped.tolist() == [[3.0, 2.0, 3.0], [1.0, 0.25, -1.75]]
    torch.testing.assert_close(grouped.sum(1), attributions.sum(1))


def test_a_pairs_attribution_goes_to_its_columns_that_differ_from_the_reference():
    """Row 0: only the grade differs from the typical applicant's, so the pair's rate is
    the grade's (a reason must not name a term that is the typical one); row 1: both
    differ, shared; row 2: neither, shared (its attribution is about 0 anyway)."""
    attributions = torch.tensor([[1.0, 4.0, 3.0], [-2.0, 0.5, 1.0], [0.0, 0.1, 1.0]])
    owners = [("term",), ("grade", "term"), ("income",)]
    differs = torch.tensor([[True, True, False], [True, True, True], [True, False, False]])
    grouped = column_contributions(attributions, owners, ["income", "grade", "term"], differs)
    torch.testing.assert_close(
        grouped, torch.tensor([[3.0, 4.0, 1.0], [1.0, 0.25, -1.75], [1.0, 0.05, 0.05]])
    )
    torch.testing.assert_close(grouped.sum(1), attributions.sum(1))


def test_reasons_are_the_largest_positive_contributions():
    contributions = np.array([[0.5, -1.0, 2.0, 0.1], [-0.2, -0.3, 0.4, -0.1]])
    reasons = top_reasons(contributions, ["age", "income", "rate", "term"], k=3)
    assert list(reasons.columns) == [
        "reason_1",
        "reason_1_contribution",
        "reason_2",
        "reason_2_contribution",
        "reason_3",
        "reason_3_contribution",
    ]
    assert reasons.loc[0, ["reason_1", "reason_2", "reason_3"]].tolist() == ["rate", "age", "term"]
    assert reasons.loc[0, "reason_1_contribution"] == pytest.approx(2.0)
    assert reasons.loc[1, "reason_1"] == "rate"
    assert pd.isna(reasons.loc[1, "reason_2"]) and np.isnan(reasons.loc[1, "reason_2_contribution"])
