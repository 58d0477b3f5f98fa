"""Cluster-mates (seed 002 applied to recommendation): the places and tags of the indexed posts in the graph cluster
a post's content points to."""

from __future__ import annotations

from tagatlas.recommender.clusters import assign_clusters
from tagatlas.recommender.evidence.base import BatchContext, EvidenceSource, SourceEvidence


class ClusterMates(EvidenceSource):
    """Share of the cluster-mates in each place, and the cluster's most frequent tags with the share carrying each."""

    name = "cluster"
    place_weights = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
    tag_weights = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)

    def available(self, model) -> bool:
        return model.graph_ is not None

    def gather(self, ctx: BatchContext) -> SourceEvidence:
        model, posts = ctx.model, ctx.posts
        # From the cluster the content alone points to: a query's own location and hashtags are what is being
        # predicted (evaluation keeps them on the query for scoring).
        told = any(p.hashtags or p.has_location for p in posts)
        if told or ctx.assigned_clusters is None:
            labels = assign_clusters(model.graph_, posts, ctx.vectors, content_only=True, found=ctx.found)[0]
        else:
            labels = ctx.assigned_clusters[0]
        own = model.posts_.store.rowids([p.id for p in posts])
        place, tag_ids, shares = model.posts_.cluster_profiles(ctx.table).evidence(
            labels, [own.get(p.id) for p in posts], ctx.table, len(model.geolocator_), top_tags=model.config.tag_match_k or 20)
        return SourceEvidence(place, tag_ids, shares)
