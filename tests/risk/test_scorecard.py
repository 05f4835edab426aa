import numpy as np

from risk.scorecard import ScorecardScaling


def test_base_points_at_base_odds_and_pdo_doubles_the_odds():
    scale = ScorecardScaling()  # 600 points at 50:1, 20 points to double the odds
    at_base, doubled, halved = scale.points(np.array([1 / 51, 1 / 101, 1 / 26]))
    assert (at_base, doubled, halved) == (600, 620, 580)
    other = ScorecardScaling(base_points=500, base_odds=20, pdo=40)
    assert other.points(np.array([1 / 21, 1 / 41])).tolist() == [500, 540]


def test_points_never_increase_with_the_probability_and_stay_finite():
    probability = np.concatenate([[0.0], np.sort(np.random.default_rng(0).random(10_000)), [1.0]])
    points = ScorecardScaling().points(probability)
    assert (np.diff(points) <= 0).all()
    assert points[0] > points[-1]
