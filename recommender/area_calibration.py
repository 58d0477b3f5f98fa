"""Calibration of a listed place's area probability: the chance that the post was written within the decision
radius of it. Two monotone maps are fitted on validation outcomes, Platt scaling (two parameters, smooth) and
isotonic regression (a step curve, needs more cases), and the one with the lower calibration error on the half of
validation it was not fitted on is kept. Both keep the order of a list, so no decision changes; only the
probabilities shown and the error radius read from them do."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tagatlas.recommender.metrics import expected_calibration_error

MIN_CASES = 20  # fewer validation outcomes than this: masses are shown as they are
MIN_ISOTONIC_CASES = 200  # isotonic regression is only tried with at least this many (each half fits half of them)
ISOTONIC_FLOOR = 1e-3  # no area is ever shown as certain or impossible from a finite validation set


@dataclass
class AreaCalibration:
    """The fitted map: Platt (a, b) or, when `isotonic` holds knots [xs, ys], their linear interpolation."""

    platt: tuple[float, float] = (1.0, 0.0)
    isotonic: list[list[float]] = field(default_factory=list)
    report: dict = field(default_factory=dict)  # how it was chosen: each method's held-out ECE

    @property
    def method(self) -> str:
        return "isotonic" if self.isotonic else ("platt" if self.platt != (1.0, 0.0) else "none")


def calibrated_masses(masses: np.ndarray, calibration: tuple[float, float] | list[float],
                      isotonic: list[list[float]] | None = None) -> np.ndarray:
    """Area masses mapped by the calibration fitted on validation: the isotonic knots when given, else Platt's
    σ(a·logit(m) + b). Monotone, so the order is kept; rescaled where the calibrated masses of a list would sum past
    one. Padding (mass 0) stays 0."""
    masses = np.asarray(masses, dtype=np.float64)
    if isotonic:
        xs, ys = isotonic
        out = np.where(masses > 0, np.interp(masses, xs, ys), 0.0)
    else:
        a, b = calibration
        if (a, b) == (1.0, 0.0):
            return masses
        m = np.clip(masses, 1e-6, 1 - 1e-6)
        out = np.where(masses > 0, 1.0 / (1.0 + np.exp(-(a * np.log(m / (1 - m)) + b))), 0.0)
    total = out.sum(axis=1, keepdims=True)
    return np.where(total > 1.0, out / np.maximum(total, 1e-12), out)


def fit_area_calibration(masses: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """Platt scaling (a > 0, b) of the first place's area mass against whether the truth lay in that area, by
    validation log-likelihood; identity when there are fewer than MIN_CASES cases or only one outcome."""
    from scipy.optimize import minimize

    correct = np.asarray(correct, float)
    if len(correct) < MIN_CASES or correct.min() == correct.max():
        return 1.0, 0.0
    m = np.clip(np.asarray(masses, float), 1e-6, 1 - 1e-6)
    x = np.log(m / (1 - m))

    def nll(theta: np.ndarray) -> float:
        z = np.exp(theta[0]) * x + theta[1]
        return float(np.mean(np.logaddexp(0, z) - correct * z))

    res = minimize(nll, np.zeros(2), method="L-BFGS-B", bounds=[(np.log(0.05), np.log(20.0)), (-10, 10)])
    return float(np.round(np.exp(res.x[0]), 4)), float(np.round(res.x[1], 4))


def fit_area_isotonic(masses: np.ndarray, correct: np.ndarray) -> list[list[float]]:
    """Isotonic regression of the outcome on the mass: the knots [xs, ys] of a non-decreasing curve, kept within
    [ISOTONIC_FLOOR, 1 - ISOTONIC_FLOOR]; [] when there are too few cases or only one outcome."""
    from sklearn.isotonic import IsotonicRegression

    correct = np.asarray(correct, float)
    if len(correct) < MIN_CASES or correct.min() == correct.max():
        return []
    fit = IsotonicRegression(y_min=ISOTONIC_FLOOR, y_max=1 - ISOTONIC_FLOOR, out_of_bounds="clip")
    fit.fit(np.asarray(masses, float), correct)
    return [np.round(fit.X_thresholds_, 6).tolist(), np.round(fit.y_thresholds_, 6).tolist()]


def _held_out_ece(masses: np.ndarray, correct: np.ndarray, halves: list[np.ndarray]) -> dict[str, float]:
    """Each method fitted on one half and scored (ECE) on the other, both ways, averaged."""
    scores: dict[str, list[float]] = {"none": [], "platt": [], "isotonic": []}
    for fit_on, score_on in (halves, halves[::-1]):
        m, c = masses[score_on][:, None], correct[score_on]
        scores["none"].append(expected_calibration_error(m[:, 0], c))
        scores["platt"].append(expected_calibration_error(calibrated_masses(m, fit_area_calibration(masses[fit_on], correct[fit_on]))[:, 0], c))
        knots = fit_area_isotonic(masses[fit_on], correct[fit_on])
        scores["isotonic"].append(expected_calibration_error(calibrated_masses(m, (1.0, 0.0), knots)[:, 0], c))
    return {k: round(float(np.mean(v)), 4) for k, v in scores.items()}


def choose_area_calibration(masses: np.ndarray, correct: np.ndarray, seed: int = 0) -> AreaCalibration:
    """Platt or isotonic, whichever has the lower ECE on the validation half it was not fitted on (ties: Platt, the
    simpler), refitted on all of validation. Isotonic is only tried with MIN_ISOTONIC_CASES outcomes or more."""
    masses, correct = np.asarray(masses, float), np.asarray(correct, bool)
    platt = fit_area_calibration(masses, correct)
    if len(correct) < MIN_ISOTONIC_CASES or correct.min() == correct.max():
        return AreaCalibration(platt=platt, report={"method": "platt", "cases": len(correct)})
    order = np.random.default_rng(seed).permutation(len(correct))
    held_out = _held_out_ece(masses, correct, [order[: len(order) // 2], order[len(order) // 2:]])
    use_isotonic = held_out["isotonic"] < held_out["platt"]
    return AreaCalibration(platt=platt, isotonic=fit_area_isotonic(masses, correct) if use_isotonic else [],
                           report={"method": "isotonic" if use_isotonic else "platt", "cases": len(correct),
                                   "held_out_ece": held_out})
