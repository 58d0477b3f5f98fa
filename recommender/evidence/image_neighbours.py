"""Image retrieval (GeoCLIP / Img2Loc style): the indexed photos nearest a post's photo by the image backbone's
features vote for their places, each vote weighted by its similarity and by how many other neighbours were taken
near it (a geodesic consensus: the neighbours that agree on a region, the medoid of their cluster, outvote a
stray look-alike on another continent); their hashtags are suggested by the share of the vote carrying each."""

from __future__ import annotations

import numpy as np

from tagatlas.data import pairwise_km
from tagatlas.recommender.evidence.base import BatchContext, EvidenceSource, SourceEvidence


def consensus_weights(sims: np.ndarray, lat: np.ndarray, lon: np.ndarray, temperature: float, radius_km: float) -> np.ndarray:
    """Each neighbour's vote (k,): softmax of its similarity times one plus the similarity-weighted number of other
    located neighbours within `radius_km` of it; neighbours without coordinates keep their similarity weight."""
    w = np.exp((sims - sims.max()) / temperature)
    located = ~np.isnan(lat)
    if located.sum() > 1:
        i = np.flatnonzero(located)
        d = pairwise_km(lat[i], lon[i])
        near = (d <= radius_km) & ~np.eye(len(i), dtype=bool)
        w = w.copy()
        w[i] = w[i] * (1.0 + near @ w[i])
    return w / w.sum()


class ImageNeighbours(EvidenceSource):
    """Places and tags of the indexed photos that look most like the post's photo."""

    name = "image_neighbours"
    needs = frozenset({"image"})
    reads_image_features = True
    place_weights = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
    tag_weights = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)
    k = 10  # neighbours that vote
    temperature = 0.05  # on cosine similarity: 0.1 more similar counts e² ≈ 7× more
    radius_km = 161.0  # neighbours this close agree (the city-level radius of Acc@161)
    top_tags = 20

    def available(self, model) -> bool:
        return model.reads_image_features and len(model.posts_.gallery()) > 0

    def gather(self, ctx: BatchContext) -> SourceEvidence:
        model, table, posts = ctx.model, ctx.table, ctx.posts
        n, n_places = len(posts), len(model.geolocator_)
        place = np.zeros((n, n_places))
        tag_ids: list[list[int]] = [[] for _ in range(n)]
        tag_values: list[np.ndarray] = [np.zeros(0) for _ in range(n)]
        if ctx.image is None:
            return SourceEvidence(place, tag_ids, tag_values)
        sims, rowids = model.posts_.gallery().search(ctx.image, self.k + 1)
        own = model.posts_.store.rowids([p.id for p in posts])
        for i, post in enumerate(posts):
            keep = table.lookup(rowids[i]) & (rowids[i] != own.get(post.id, -2))
            found, s = rowids[i][keep][: self.k], sims[i][keep][: self.k]
            if not len(found):
                continue
            w = consensus_weights(s, table.lat[found], table.lon[found], self.temperature, self.radius_km)
            cls = table.cls[found]
            if (cls >= 0).any():
                place[i] = np.bincount(cls[cls >= 0], weights=w[cls >= 0], minlength=n_places)[:n_places]
                place[i] /= place[i].sum()
            scores: dict[int, float] = {}
            for weight, r in zip(w, found):
                for t in table.row_tags[r]:
                    scores[t] = scores.get(t, 0.0) + float(weight)
            best = sorted(scores.items(), key=lambda kv: -kv[1])[: self.top_tags]
            tag_ids[i] = [t for t, _ in best]
            tag_values[i] = np.array([v for _, v in best])
        return SourceEvidence(place, tag_ids, tag_values)
