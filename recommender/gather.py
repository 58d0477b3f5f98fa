"""Everything fusion needs for a batch, gathered one source at a time (recommender/evidence/): the classifier (the
head's reading), neighbour votes, the user's habits, tags written as words, the tag match, the plug-in sources, photo
GPS, and the cluster each post is assigned to; all tag ids mapped into one batch vocabulary."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from tagatlas.data import Post
from tagatlas.recommender.clusters import assign_clusters
from tagatlas.recommender.coattention import RegionMaps
from tagatlas.recommender.evidence import BatchContext, gather_all
from tagatlas.recommender.evidence.habits import user_habits
from tagatlas.recommender.evidence.neighbours import retrieve
from tagatlas.recommender.evidence.photo_gps import photo_positions
from tagatlas.recommender.evidence.written_tags import written_tags
from tagatlas.recommender.fusion import Evidence
from tagatlas.recommender.named_place import named_sources
from tagatlas.recommender.reader import Features

if TYPE_CHECKING:
    from tagatlas.recommender.model import TagAtlas


def gather_evidence(model: "TagAtlas", posts: list[Post], features: Features,
                    regions: RegionMaps | None = None) -> tuple[Evidence, np.ndarray]:
    """(the batch's `Evidence`, its index-space vectors). While training tunes fusion (`model.fusion_` is None)
    every plug-in source is gathered; afterwards only those fusion gives weight."""
    x, dense, clean, photos, image = features
    q, place_probs, tag_probs, reg_coords = model.reader.read(x, dense, clean, posts=posts, regions=regions)
    table, k_max = model.posts_.table(), model.config.k_max
    nb = retrieve(model.posts_.search, table, q, [p.id for p in posts], k_max)
    clusters = assign_clusters(model.graph_, posts, q, found=nb.found)  # reported: from every view the post has
    ctx = BatchContext(posts, q, dense, clean, nb.found, table, model, clusters, image)
    habits = user_habits(model.posts_.store, table, posts, q, ctx.histories)
    tag_counts = model.posts_.tag_counts()
    text_tags, text_prior = written_tags(clean, tag_counts, table, model.posts_.written_rates())
    embed_tags, embed_sims = model.hashtags_.matched(dense, tag_counts, model.posts_.tags_version, table, model.encoder.text)
    fusion = model.fusion_
    wanted = (lambda name: True) if fusion is None else (
        lambda name: fusion.source_place.get(name, 0.0) > 0 or fusion.source_place_tagged.get(name, 0.0) > 0
        or fusion.source_tags.get(name, 0.0) > 0
        or name in fusion.coordinate_sources or name in named_sources(fusion))
    plugged = gather_all(model.sources, ctx, wanted)
    batch_tags = model.hashtags_.batch_vocabulary(table, nb, habits, [text_tags, embed_tags] + [s.tag_ids for s in plugged.values()], k_max)
    remap = batch_tags.remap
    ev = Evidence(place_probs, tag_probs, nb.sims, nb.cls, nb.lat, nb.lon, nb.ids, batch_tags.remap_neighbours(nb.tags, nb.kept_extra, k_max),
                  habit_sims=habits.sims, habit_tags=[[remap(tl) for tl in lists] for lists in habits.tags], habit_ids=habits.ids,
                  tags=batch_tags.tags, n_vocab=len(model.hashtags_), text_tags=[list(remap(tl)) for tl in text_tags], text_prior=text_prior,
                  reg_coords=reg_coords, embed_tags=[list(remap(tl)) for tl in embed_tags], embed_sims=embed_sims, habit_ages=habits.ages,
                  sources={name: replace(s, tag_ids=[list(remap(tl)) for tl in s.tag_ids]) for name, s in plugged.items()},
                  assigned_clusters=clusters, photo_gps=photo_positions(photos), tagged=_tagged(posts))
    return ev, q


def regather(model: "TagAtlas", ev: Evidence, posts: list[Post], clean: list[str], source) -> Evidence:
    """`ev` with one plug-in source gathered again for the same posts (after its setting changed): how training tries
    a source's settings on validation without reading the batch again. Only for a source that reads the posts, their
    cleaned text and the model's indexed state, and gives no tags (place_names)."""
    n = len(posts)
    empty = np.zeros((n, 0), dtype=np.float32)
    ctx = BatchContext(posts, empty, empty, clean, (empty, np.zeros((n, 0), dtype=np.int64)), model.posts_.table(), model)
    again = gather_all([source], ctx, lambda name: True)
    order = [s.name for s in model.sources]  # the order sources were gathered in: which named point comes first reads it
    return replace(ev, sources={name: again.get(name, ev.sources.get(name)) for name in order if name in again or name in ev.sources})


def _tagged(posts: list[Post]) -> np.ndarray | None:
    """Which posts came with hashtags as input (None when none did: the posting form)."""
    tagged = np.array([bool(p.hashtags) for p in posts], dtype=bool)
    return tagged if tagged.any() else None
