"""The places a prediction lists, most probable first, and the first one is the decision.

Each place listed stands for its area: the place classes within `decision_km` of it that no place listed before it
counted. Its probability is that area's mass, so the probabilities of a list never sum past one, a place's area is
what "the post was written there" means at the decision's radius, and the most probable entry is the one named
first by construction (New Orleans, p = 0.04, is never listed under a lone Long Island City, p = 0.037, that won
only by a smaller area). The decided area's most probable place and the best other areas are the candidates; the
one whose own area holds the most mass is reported (`decided_label`), in tuning and at prediction alike."""

from __future__ import annotations

import numpy as np

from tagatlas.recommender.fusion import FusionParams, PlaceAreas, decide_place, label_in_area

LISTED = 5  # places listed per post (the candidates weighed for the decision are the same ones)


def within(areas: PlaceAreas, km: float, classes: np.ndarray) -> np.ndarray:
    """(n, C) whether each place class lies within `km` of each post's given class (itself always)."""
    if km <= 0:
        out = np.zeros((len(classes), len(areas)), bool)
        out[np.arange(len(classes)), classes] = True
        return out
    return areas.near(km)[classes].toarray() > 0


def area_mass(probs: np.ndarray, classes: np.ndarray, areas: PlaceAreas, km: float) -> np.ndarray:
    """(n,) each post's probability within `km` of its given place class."""
    return (probs * within(areas, km, classes)).sum(axis=1)


def place_list(probs: np.ndarray, first: np.ndarray, areas: PlaceAreas, km: float, n_top: int = LISTED,
               first_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(places (n, n_top), masses (n, n_top)) per post, most massive first; -1 / 0 pad a post with fewer places.
    `first` is the decided area's most probable place; each later candidate is the most probable unclaimed place of
    the area (centred anywhere) holding the most unclaimed mass. Areas never overlap.
    `first_only`: only the first entry is wanted (`decided_label`, which tuning calls for every setting tried): a post
    is no longer listed once a place listed outweighs all the mass still unclaimed, since no later area can outweigh
    it; its first entry is the same as in the full list, its later ones are left as padding."""
    n, n_places = probs.shape
    n_top = min(n_top, n_places)
    places = np.full((n, n_top), -1, np.int64)
    masses = np.zeros((n, n_top))
    rows, sub, claimed = np.arange(n), probs, np.zeros((n, n_places), bool)  # the posts still listed, their probs
    near = areas.near(km) if km > 0 else None
    for step in range(n_top):
        free = np.where(claimed, 0.0, sub)
        if step == 0:
            current, alive = np.asarray(first, np.int64), np.ones(n, bool)
        else:
            if first_only:
                rows, sub, claimed, free = _unsettled(masses, rows, sub, claimed, free)
                if not rows.size:
                    break
            mass_at = free.T if near is None else near @ np.ascontiguousarray(free.T, dtype=np.float32)  # (places, posts)
            centre = mass_at.argmax(axis=0)
            in_area = within(areas, km, centre) & ~claimed
            current = np.where(in_area, sub, -1.0).argmax(axis=1)
            alive = in_area.any(axis=1) & (mass_at[centre, np.arange(len(rows))] > 0)
        area = within(areas, km, current) & ~claimed
        places[rows[alive], step] = current[alive]
        masses[rows[alive], step] = (free * area).sum(axis=1)[alive]
        claimed |= area & alive[:, None]
    order = np.argsort(-masses, axis=1, kind="stable")  # ties keep the greedy order (the decided area first)
    return np.take_along_axis(places, order, 1), np.take_along_axis(masses, order, 1)


SETTLED_MARGIN = 1e-9  # relative: far above the rounding of a sum of probabilities, so "outweighs" is never a rounding


def _unsettled(masses: np.ndarray, rows: np.ndarray, sub: np.ndarray, claimed: np.ndarray, free: np.ndarray):
    """The listed posts whose first entry could still change: no place listed yet outweighs the mass still unclaimed
    (every later area is a part of that mass). Each post's row is kept as it was, so what follows is the same for it."""
    keep = masses[rows].max(axis=1) <= free.sum(axis=1) * (1.0 + SETTLED_MARGIN)
    if keep.all():
        return rows, sub, claimed, free
    return rows[keep], sub[keep], claimed[keep], free[keep]


def decided_label(probs: np.ndarray, p: FusionParams, areas: PlaceAreas) -> np.ndarray:
    """The place reported first: of the listed candidates, the one whose area holds the most mass."""
    first = label_in_area(probs, decide_place(probs, p, areas), p, areas)
    return place_list(probs, first, areas, p.decision_km, first_only=True)[0][:, 0]
