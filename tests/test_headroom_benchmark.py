"""benchmarks/headroom.py's figures by hand: per-answer accuracy, the oracle over answers and the named-city bound."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from headroom import answer_row, named_city_errors, oracle_row, point_errors, user_rows  # noqa: E402


def test_an_answer_row_counts_hits_within_each_radius_and_the_median():
    row = answer_row(np.array([5.0, 25.0, 100.0, 161.0, 2000.0]))
    assert row == {"acc_25": pytest.approx(0.4), "acc_161": pytest.approx(0.8), "median_km": 100.0}


def test_the_oracle_takes_per_query_the_nearest_answer_and_never_loses_to_one():
    a, b = np.array([10.0, 200.0, 3000.0, 50.0]), np.array([400.0, 100.0, 20.0, 5000.0])
    row = oracle_row([a, b])
    assert row == {"acc_25": pytest.approx(0.5), "acc_161": pytest.approx(1.0), "median_km": pytest.approx(35.0)}
    for single in (a, b):
        assert all(row[k] >= answer_row(single)[k] for k in ("acc_25", "acc_161"))


def test_a_named_city_is_measured_from_the_truth_and_a_text_without_names_names_nothing():
    lat, lon = np.array([48.8566, 48.8566, 30.0]), np.array([2.3522, 2.3522, -40.0])
    any_reading, likeliest = named_city_errors(["synthetic croissants in paris tonight", "synthetic nothing here at all", None], lat, lon)
    assert any_reading[0] < 25 and likeliest[0] < 25  # Paris, France: a candidate of "paris" and its likeliest reading
    assert np.isinf(any_reading[1:]).all() and np.isinf(likeliest[1:]).all()


def test_the_likeliest_reading_of_a_name_can_be_far_where_some_reading_is_near():
    lat, lon = np.array([33.66]), np.array([-95.56])  # Paris, Texas: "paris" alone reads as Paris, France
    any_reading, likeliest = named_city_errors(["synthetic night out in paris"], lat, lon)
    assert any_reading[0] < 25 < 5000 < likeliest[0] < 10000


def test_a_query_whose_user_has_no_past_post_is_answered_at_the_fallback_and_the_oracles_take_the_nearer():
    lat, lon = np.array([48.8566, 40.7128]), np.array([2.3522, -74.0060])
    last = point_errors([(48.86, 2.35), None], (48.8566, 2.3522), lat, lon)
    assert last[0] < 1 and 5000 < last[1] < 6500  # the second answered at the fallback (Paris) from New York
    tagatlas, lr, clf = np.array([300.0, 10.0]), np.array([900.0, 900.0]), np.array([900.0, 900.0])
    rows = user_rows(tagatlas, lr, clf, last)
    assert rows["user's closest located past post"]["acc_161"] == pytest.approx(0.5)
    assert rows["oracle: TagAtlas or the user's closest past post"]["acc_161"] == pytest.approx(1.0)
