"""How a geolocation setting scores on validation queries: Acc@161, Acc@25 and the median error, and the weakest lead
over a reference (the figure tuning maximises, so no figure is bought with another)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def one_query(n_queries: int) -> float:
    """One validation query's worth of a mean score (1 / n), a hair above so a gain of exactly one query, which
    floating-point sums may put a rounding error over 1 / n, counts as one query and not more."""
    return 1.0 / max(n_queries, 1) + 1e-9


@dataclass(frozen=True)
class GeoScore:
    """One validation figure set: Acc@161, Acc@25 and the median error in km."""

    acc_161: float
    acc_25: float
    median_km: float

    @classmethod
    def of(cls, err: np.ndarray) -> "GeoScore":
        return cls(float(np.mean(err <= 161)), float(np.mean(err <= 25)), float(np.median(err)))

    def to_dict(self) -> dict:
        return {"acc_at_161": round(self.acc_161, 4), "acc_at_25": round(self.acc_25, 4), "median_km": round(self.median_km, 1)}


def weakest_lead(score: GeoScore, reference: GeoScore, n_queries: int) -> float:
    """The smallest of three ratios over the reference (its best figure of each, from any single-source answer):
    Acc@161 and Acc@25 over the reference's, the reference's median km over this one. A setting that lifts Acc@161 by
    sending the median far away leads by the smaller ratio, so maximising this buys no figure with another. A
    reference accuracy of 0 counts as one query's worth, so the ratio stays finite."""
    floor = one_query(n_queries)
    return min(score.acc_161 / max(reference.acc_161, floor), score.acc_25 / max(reference.acc_25, floor),
               reference.median_km / max(score.median_km, 1e-9))
