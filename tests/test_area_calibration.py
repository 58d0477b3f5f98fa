"""Calibration of a listed place's area probability (recommender/area_calibration.py): Platt or isotonic, chosen by
held-out ECE on validation; monotone, so lists keep their order. Masses and outcomes here are synthetic, named so."""

from __future__ import annotations

import json

import numpy as np

from tagatlas.recommender.area_calibration import (MIN_ISOTONIC_CASES, calibrated_masses, choose_area_calibration,
                                                   fit_area_calibration, fit_area_isotonic)
from tagatlas.recommender.fusion import FusionParams
from tagatlas.recommender.metrics import expected_calibration_error


def synthetic_outcomes(n: int, truth, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    masses = rng.uniform(0.02, 0.98, n)
    return masses, rng.uniform(size=n) < truth(masses)


def test_platt_fixes_overconfident_masses_and_keeps_their_order():
    masses, correct = synthetic_outcomes(2000, lambda m: m ** 2)  # synthetic: overconfident masses
    a, b = fit_area_calibration(masses, correct)
    fixed = calibrated_masses(masses[:, None], (a, b))[:, 0]
    for lo in (0.3, 0.6, 0.85):
        sel = (masses > lo) & (masses < lo + 0.1)
        assert abs(fixed[sel].mean() - correct[sel].mean()) < abs(masses[sel].mean() - correct[sel].mean())
    listed = np.array([[0.5, 0.3, 0.2, 0.0]])
    shown = calibrated_masses(listed, (0.5, 1.0))  # a calibration that inflates
    assert np.all(np.diff(shown[0][:3]) <= 0) and shown.sum() <= 1 + 1e-9 and shown[0, 3] == 0
    assert fit_area_calibration(masses[:10], correct[:10]) == (1.0, 0.0)  # too few cases: unchanged


def step(m: np.ndarray) -> np.ndarray:
    """Synthetic outcome rate no sigmoid of logit(m) follows: flat, then a jump past 0.6."""
    return np.where(m < 0.6, 0.15, 0.9)


def test_isotonic_is_chosen_where_platt_cannot_follow_the_outcomes_and_helps_on_fresh_cases():
    masses, correct = synthetic_outcomes(3000, step)
    fitted = choose_area_calibration(masses, correct)
    assert fitted.method == "isotonic" and fitted.report["held_out_ece"]["isotonic"] < fitted.report["held_out_ece"]["platt"]
    fresh_m, fresh_c = synthetic_outcomes(3000, step, seed=1)
    iso = calibrated_masses(fresh_m[:, None], fitted.platt, fitted.isotonic)[:, 0]
    platt = calibrated_masses(fresh_m[:, None], fitted.platt)[:, 0]
    assert expected_calibration_error(iso, fresh_c) < expected_calibration_error(platt, fresh_c) < expected_calibration_error(fresh_m, fresh_c)
    assert 0 < iso.min() and iso.max() < 1  # never shown as certain or impossible


def test_platt_is_kept_where_it_suffices_or_cases_are_few():
    masses, correct = synthetic_outcomes(3000, lambda m: 1 / (1 + np.exp(-(2 * np.log(m / (1 - m)) - 0.5))))
    assert choose_area_calibration(masses, correct).method == "platt"  # outcomes follow a sigmoid: Platt is exact
    few_m, few_c = synthetic_outcomes(MIN_ISOTONIC_CASES - 1, step)
    assert choose_area_calibration(few_m, few_c).isotonic == []
    assert fit_area_isotonic(few_m[:10], few_c[:10]) == []


def test_isotonic_lists_keep_their_order_padding_and_sum():
    masses, correct = synthetic_outcomes(3000, step)
    knots = fit_area_isotonic(masses, correct)
    listed = np.array([[0.7, 0.2, 0.05, 0.0], [0.45, 0.44, 0.1, 0.01]])
    shown = calibrated_masses(listed, (1.0, 0.0), knots)
    assert np.all(np.diff(shown, axis=1) <= 1e-12) and shown[0, 3] == 0
    assert np.all(shown.sum(axis=1) <= 1 + 1e-9)  # 0.9 + 0.15 + ... is rescaled to sum to one


def test_fusion_params_keep_the_isotonic_knots_through_save_and_load():
    masses, correct = synthetic_outcomes(3000, step)
    fitted = choose_area_calibration(masses, correct)
    params = FusionParams(area_calibration=list(fitted.platt), area_isotonic=fitted.isotonic)
    again = FusionParams(**json.loads(json.dumps(params.to_dict())))
    assert again == params and again.area_isotonic
    assert np.array_equal(calibrated_masses(masses[:, None], again.area_calibration, again.area_isotonic),
                          calibrated_masses(masses[:, None], params.area_calibration, params.area_isotonic))
    old = {k: v for k, v in params.to_dict().items() if k != "area_isotonic"}  # a model saved before isotonic existed
    assert FusionParams(**old).area_isotonic == []
