"""The city a post names, as a place: all of the source's mass on the place class nearest that city, however far.

`place_names` spreads a name over the place classes within NEAR_KM of its candidate cities and says nothing where
none lies that close, which is common when the classes are sparse (a world of photos in a few hundred classes); the
city it names is still where the post most likely was (its `position`, which can pin the coordinates). This source
turns the decision towards that city's nearest class, so the decided area holds the named city and the coordinates
can be the city's own. Its share is tuned on validation like every source's, 0 where it does not help."""

from __future__ import annotations

import numpy as np

from tagatlas.recommender.evidence.base import BatchContext, SourceEvidence
from tagatlas.recommender.evidence.place_names import PlaceNames


class NamedPoint(PlaceNames):
    """One-hot at the place class nearest the city the post's most trusted name points to (`PlaceNames._named_city`:
    the same point and the same learned trust); a row of zeros where the post names no trusted city."""

    name = "named_point"
    place_weights = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
    tag_weights = (0.0,)

    def gather(self, ctx: BatchContext) -> SourceEvidence:
        gaz = self._fitted_gazetteer(ctx)
        points = np.array([self._named_city(gaz, gaz.find(clean, post.hashtags)) for post, clean in zip(ctx.posts, ctx.clean)],
                          dtype=float).reshape(-1, 2)
        geolocator = ctx.model.geolocator_
        place = np.zeros((len(ctx.posts), len(geolocator)))
        named = np.flatnonzero(np.isfinite(points[:, 0]))
        if named.size:
            nearest = geolocator.areas_.tree.query(np.radians(points[named]), k=1)[1][:, 0]
            place[named, nearest] = 1.0
        return SourceEvidence(place=place)
