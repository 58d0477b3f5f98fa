"""Learned cross-modal imputation (seed 002): a missing view of a post guessed from the views it has.

One ridge map per ordered pair of views (image ← text, text ← image, or any named modalities), fitted on
posts that have both, with the regularisation chosen by cross-validation. Each map carries a confidence:
the mean cosine between imputed and true vectors on posts held out from its fit. Imputed views are
used in proportion to that confidence, so a map that guesses badly contributes little.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from sklearn.linear_model import RidgeCV

from tagatlas.core import atomic_path, write_text_atomic
from tagatlas.encoders.base import l2_normalize

log = logging.getLogger(__name__)


class CrossModalImputer:
    """fit({name: (vectors, present)}) → one map per ordered pair; transform(...) → filled views and confidences."""

    def __init__(self, alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0), min_pairs: int = 50, holdout: float = 0.2,
                 seed: int = 0):
        self.alphas = tuple(alphas)
        self.min_pairs = min_pairs
        self.holdout = holdout
        self.seed = seed

    def fit(self, views: dict[str, tuple[np.ndarray, np.ndarray]]) -> "CrossModalImputer":
        """Learn target ← source for every pair of views that at least `min_pairs` posts share."""
        sizes = {name: len(v) for name, (v, _) in views.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"views disagree on the number of posts: {sizes}")
        rng = np.random.default_rng(self.seed)
        self.names_ = list(views)
        self.maps_: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self.confidence_: dict[tuple[str, str], float] = {}
        for target, (tv, tp) in views.items():
            for source, (sv, sp_) in views.items():
                both = np.flatnonzero(np.asarray(tp, bool) & np.asarray(sp_, bool))
                if source == target or len(both) < self.min_pairs:
                    continue
                both = rng.permutation(both)
                cut = max(1, int(len(both) * self.holdout))
                held, train = both[:cut], both[cut:]
                trial = RidgeCV(alphas=self.alphas).fit(sv[train], tv[train])
                guess = l2_normalize(trial.predict(sv[held]).astype(np.float32))
                cosine = float(np.mean(np.sum(guess * l2_normalize(tv[held].astype(np.float32)), axis=1)))
                final = RidgeCV(alphas=[trial.alpha_]).fit(sv[both], tv[both])
                self.maps_[(target, source)] = (final.coef_.astype(np.float32), np.atleast_1d(final.intercept_).astype(np.float32))
                self.confidence_[(target, source)] = max(0.0, cosine)
        return self

    def can_impute(self, target: str) -> bool:
        return any(t == target for t, _ in getattr(self, "maps_", {}))

    def transform(self, views: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{name: (vectors, confidence)}: present views unchanged with confidence 1; a missing one filled with
        the confidence-weighted mean of the unit guesses from the present views (confidence: the best of
        their maps' confidences); one no map can reach stays zeros with confidence 0."""
        out = {}
        for target, (tv, tp) in views.items():
            tp = np.asarray(tp, bool)
            filled, conf = np.where(tp[:, None], tv, 0).astype(np.float32), tp.astype(np.float32)
            guess, weight = np.zeros_like(filled), np.zeros(len(filled), np.float32)
            for (t, source), (coef, intercept) in self.maps_.items():
                if t != target or source not in views:
                    continue
                sv, sp_ = views[source]
                rows = np.flatnonzero(~tp & np.asarray(sp_, bool))
                if len(rows):
                    c = self.confidence_[(t, source)]
                    guess[rows] += c * l2_normalize(sv[rows] @ coef.T + intercept)
                    weight[rows] += c
                    conf[rows] = np.maximum(conf[rows], c)
            rows = np.flatnonzero(~tp & (weight > 0))
            filled[rows] = l2_normalize(guess[rows])
            out[target] = (filled, conf)
        return out

    # -- persistence: a folder with imputer.json and imputer.npz, both written atomically ----------
    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for (target, source), (coef, intercept) in self.maps_.items():
            arrays[f"{target}<-{source}:coef"], arrays[f"{target}<-{source}:intercept"] = coef, intercept
        with atomic_path(folder / "imputer.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        meta = {"alphas": list(self.alphas), "min_pairs": self.min_pairs, "holdout": self.holdout, "seed": self.seed,
                "names": self.names_, "confidence": [[t, s, c] for (t, s), c in self.confidence_.items()]}
        write_text_atomic(folder / "imputer.json", json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "CrossModalImputer":
        folder = Path(folder)
        meta = json.loads((folder / "imputer.json").read_text())
        self = cls(tuple(meta["alphas"]), meta["min_pairs"], meta["holdout"], meta["seed"])
        self.names_ = meta["names"]
        self.confidence_ = {(t, s): float(c) for t, s, c in meta["confidence"]}
        with np.load(folder / "imputer.npz") as arrays:
            self.maps_ = {(t, s): (arrays[f"{t}<-{s}:coef"], arrays[f"{t}<-{s}:intercept"]) for t, s in self.confidence_}
        return self


def fill_missing_side(imputer: CrossModalImputer | None, pv) -> np.ndarray:
    """Post vectors (`PostVectors`) with a missing text or image side filled in from the present one (seed 002): the
    imputed side is added in proportion to its map's confidence, as a present image is added by its gate weight.
    Unchanged without an imputer (too few training posts had both modalities)."""
    if imputer is None:
        return pv.vectors
    single = pv.has_text != pv.has_image
    if not single.any():
        return pv.vectors
    v = pv.vectors[single]
    filled = imputer.transform({"text": (v, pv.has_text[single]), "image": (v, pv.has_image[single])})
    extra = np.zeros_like(v)
    for name, present in (("text", pv.has_text[single]), ("image", pv.has_image[single])):
        vectors, confidence = filled[name]
        extra += np.where(present[:, None], 0.0, vectors * confidence[:, None])
    out = pv.vectors.copy()
    out[single] = l2_normalize(v + extra)
    return out


def imputer_for(pv, rows: np.ndarray, min_pairs: int, seed: int) -> CrossModalImputer | None:
    """Text ↔ image maps learned on the posts at `rows` of `pv` (encoded with `parts=True`) that have both sides;
    None when fewer than `min_pairs` do (unreadable images are missing, not pairs) or no map could be learned."""
    ok = pv.has_text[rows] & pv.has_image[rows]
    if min_pairs <= 0 or pv.text_part is None or ok.sum() < min_pairs:
        return None
    imputer = CrossModalImputer(min_pairs=min_pairs, seed=seed).fit(
        {"text": (l2_normalize(pv.text_part[rows]), ok), "image": (pv.image_part[rows], ok)})
    if not imputer.maps_:
        return None
    log.info("cross-modal imputer", extra={"pairs": int(ok.sum()),
                                           "confidence": {f"{t}<-{s}": round(c, 3) for (t, s), c in imputer.confidence_.items()}})
    return imputer
