"""The bootstrap over held-out users that says how sure a lead over the best baseline is (synthetic km errors)."""

import numpy as np

from tagatlas.evaluation.runner import own_figures
from tagatlas.evaluation.uncertainty import figures, interval, lead_over_baselines, mean_lead, modality_gain, user_draws, value_figure
from tagatlas.recommender.metrics import expected_calibration_error, new_tag_hits
from tagatlas.recommender.metrics import f1_per_query, tag_metrics


def test_a_draw_takes_whole_users_and_as_many_as_there_are():
    users = ["a", "a", "a", "b", "c", "c"]
    for draw in user_draws(users, draws=50, seed=1):
        picked = [users[i] for i in draw]
        for user in set(picked):  # a user drawn brings all of its queries, as often as it was drawn
            assert picked.count(user) % users.count(user) == 0
        assert sum(picked.count(u) // users.count(u) for u in set(picked)) == 3
    assert user_draws([]) == []


def test_a_clear_lead_keeps_its_interval_above_one_and_a_tie_straddles_one():
    rng = np.random.default_rng(0)
    users = [f"synthetic-u{i // 3}" for i in range(300)]
    near, far = rng.uniform(0, 100, 300), rng.uniform(200, 5000, 300)
    better = np.where(np.arange(300) % 4 == 0, far, near)  # within 161 km for three queries of four
    baseline = np.where(np.arange(300) % 2 == 0, far, near)  # for one of two
    lead = lead_over_baselines(better, {"synthetic_baseline": baseline, "worse": far}, user_draws(users))
    acc = lead["acc_161"]
    assert acc["ratio"] == 0.75 / 0.5 and 1.0 < acc["low"] < acc["ratio"] < acc["high"]
    same = lead_over_baselines(baseline, {"synthetic_baseline": baseline[::-1].copy()}, user_draws(users))["acc_161"]
    assert same["low"] < 1.0 < same["high"]
    assert lead["median_km"]["ratio"] == np.median(better) / np.median(baseline)


def test_the_interval_widens_when_queries_move_together():
    """The same 120 queries as 120 users or as 4 users of 30: a user's queries fail together, so fewer users, wider."""
    hits = np.r_[np.full(30, 10.0), np.full(30, 1000.0), np.full(30, 10.0), np.full(30, 10.0)]
    baseline = np.full(120, 10.0)
    baseline[::2] = 1000.0
    many = lead_over_baselines(hits, {"b": baseline}, user_draws([str(i) for i in range(120)]))["acc_161"]
    few = lead_over_baselines(hits, {"b": baseline}, user_draws([str(i // 30) for i in range(120)]))["acc_161"]
    assert many["ratio"] == few["ratio"] and few["high"] - few["low"] > 2 * (many["high"] - many["low"])


def test_an_undefined_ratio_is_none_not_a_number_json_cannot_hold():
    zero = np.full(10, 5000.0)
    lead = lead_over_baselines(np.full(10, 10.0), {"b": zero}, user_draws([str(i) for i in range(10)]))
    assert lead["acc_161"] == {"ratio": None, "low": None, "high": None}
    assert interval(2.0, np.array([np.inf, np.nan])) == {"ratio": 2.0, "low": None, "high": None}
    gain = modality_gain(np.full(10, 10.0), [np.full(10, 10.0), zero], user_draws([str(i) for i in range(10)]))
    assert gain == {"ratio": 1.0, "low": 1.0, "high": 1.0}


def test_the_benchmark_block_gives_each_interval_beside_its_ratio():
    """benchmarks/pipeline.py writes a ratio's interval next to it, and nothing for a file evaluated before intervals."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from pipeline import ratios

    geo = {"tagatlas": {"acc_at_km": {"161": 0.3, "25": 0.1}, "median_km": 900.0},
           "baselines": {"synthetic": {"acc_at_km": {"161": 0.2, "25": 0.1}, "median_km": 1000.0}}}
    result = {"geo": geo, "hashtags": {"tagatlas": {"n": 0}, "baselines": {}}}
    assert "interval" not in ratios(result, "users2015")
    result["uncertainty"] = {"level": 0.95, "geo": {"acc_161": {"ratio": 1.5, "low": 0.9, "high": 2.25},
                                                    "acc_25": {"ratio": 1.0, "low": None, "high": None},
                                                    "median_km": {"ratio": 0.9, "low": 0.6, "high": 1.3}}}
    text = ratios(result, "users2015")
    assert "Acc@161 ×1.50 (target ≥ ×1.25; 95 % interval over held-out users ×0.90–×2.25)" in text
    assert "Acc@25 ×1.00 (target ≥ ×1.00);" in text and "median km ×0.90 (target ≤ ×0.90; 95 % interval over held-out users ×0.60–×1.30)" in text
    result["hashtags"] = {"tagatlas": {"n": 9, "f1_at_5": 0.3}, "baselines": {"synthetic": {"f1_at_5": 0.2}}}
    result["geo_with_tags"] = {"tagatlas": {"acc_at_km": {"161": 0.6}, "median_km": 12.0}}
    result["uncertainty"]["hashtags"] = {"f1_at_5": {"ratio": 1.5, "low": 1.2, "high": 1.9}}
    result["uncertainty"]["figures"] = {"geo_with_tags": {"acc_161": {"value": 0.6, "low": 0.45, "high": 0.71},
                                                          "median_km": {"value": 12.0, "low": 4.0, "high": 90.0}}}
    text = ratios(result, "im2gps3k")
    assert "F1@5 ×1.50 (95 % interval over held-out users ×1.20–×1.90)" in text
    assert ("hashtags as input: Acc@161 0.600 (target ≥ 0.70; 95 % interval over held-out users 0.450–0.710), "
            "median 12 km (target ≤ 25; 95 % interval over held-out users 4–90 km)") in text
    assert "new-tag" not in text  # no query with a tag born after training
    result["hashtags"]["tagatlas"]["new_tag_hr_at_10"] = 0.4
    result["uncertainty"]["figures"]["new_tag_hr_at_10"] = {"value": 0.4, "low": 0.1, "high": 0.7}
    assert "new-tag HR@10 0.400 (95 % interval over held-out users 0.100–0.700)" in ratios(result, "im2gps3k")
    assert "new-tag HR@10 0.400 (target > 0.15; 95 % interval over held-out users 0.100–0.700)" in ratios(result, "yfcc4k")


def test_the_benchmark_block_gives_place_eces_interval_and_its_target_where_it_applies():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from pipeline import calibration

    c = {"place_ece": 0.04, "place_ece_uncalibrated": 0.2, "area_km": 1000.0, "hedged": 0, "n": 600, "area_calibration": [1.0, 0.0]}
    result = {"calibration": c, "uncertainty": {"level": 0.95, "figures": {"place_ece": {"value": 0.04, "low": 0.03, "high": 0.061}}}}
    assert "0.040 (target ≤ 0.05 with 500 located queries or more; 95 % interval over held-out users 0.030–0.061), 0.200 before" in calibration(result)
    result["calibration"] = {**c, "n": 70}
    assert "0.040 (95 % interval over held-out users 0.030–0.061), 0.200 before" in calibration(result)
    assert "0.040, 0.200 before" in calibration({"calibration": {**c, "n": 70}})  # a file evaluated before the interval existed


def test_f1_per_query_is_what_the_f1_figure_averages_and_its_lead_has_an_interval():
    recommended = [["synthetic-a", "b"], ["c"], [], ["d", "e", "f", "g", "h", "i"]]
    truth = [["synthetic-a"], ["x"], ["y"], ["i", "d"]]  # "i" is sixth: only the first five count
    per_query = f1_per_query(recommended, truth)
    assert per_query.tolist() == [2 * 0.5 * 1.0 / 1.5, 0.0, 0.0, 2 * 0.2 * 0.5 / 0.7]
    assert per_query.mean() == tag_metrics(recommended, recommended, truth)["f1_at_5"]
    assert f1_per_query([["a"], ["b"]], [["a"], []]).tolist() == [1.0]  # a query without true tags is not scored
    lead = mean_lead(np.tile(per_query, 10), [np.tile(per_query[::-1], 10)], user_draws([str(i) for i in range(40)]))
    assert lead["ratio"] == 1.0 and lead["low"] < 1.0 < lead["high"]


def test_the_ingest_settings_own_figures_come_with_intervals():
    errors = np.r_[np.full(30, 5.0), np.full(10, 900.0)]
    out = figures(errors, user_draws([str(i) for i in range(40)]))
    assert out["acc_161"]["value"] == 0.75 and out["acc_161"]["low"] < 0.75 < out["acc_161"]["high"]
    assert out["median_km"]["value"] == 5.0 and out["median_km"]["low"] <= 5.0 <= out["median_km"]["high"]
    assert figures(np.zeros(0), []) == {}


def test_a_figure_set_absolutely_comes_with_its_interval_over_users():
    hits = np.r_[np.ones(30), np.zeros(10)]
    out = value_figure([hits], user_draws([str(i) for i in range(40)]), np.mean)
    assert out["value"] == 0.75 and out["low"] < 0.75 < out["high"]
    assert value_figure([np.zeros(0)], [], np.mean) == {}


def test_place_ece_and_new_tag_hits_draw_from_the_users_who_have_such_queries():
    rng = np.random.default_rng(0)
    confidence, correct = rng.uniform(size=60), rng.uniform(size=60) < 0.5
    geo_users = [f"synthetic-{i % 20}" for i in range(60)]
    ranked = [["new-a", "old"], ["old"], ["old"], ["old"], ["old"]]
    new = [{"new-a"}, {"new-b"}, set(), set(), set()]  # only the first two users have a tag born after training
    out = own_figures(confidence.tolist(), correct, geo_users, ranked, new, ["a", "b", "c", "d", "e"])
    assert out["place_ece"]["value"] == expected_calibration_error(confidence, correct)
    assert out["place_ece"]["low"] < out["place_ece"]["high"]
    assert new_tag_hits(ranked, new).tolist() == [1.0, 0.0]
    # two users drawn from the two with new tags: both "a" (1.0), both "b" (0.0) or one of each
    assert out["new_tag_hr_at_10"] == {"value": 0.5, "low": 0.0, "high": 1.0}
    assert "new_tag_hr_at_10" not in own_figures([], np.zeros(0, bool), [], ranked, [set()] * 5, list("abcde"))
