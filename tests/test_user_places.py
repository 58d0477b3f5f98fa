"""The user's own places as evidence: the trust of a past post by its time gap is learned from training users, and a
user's located past posts move the answer for their new post (and only for theirs). The users and posts made up here
are synthetic and named so; the model is trained on the real tweet subset."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from tagatlas.data import Post, distance_km, read_posts
from tagatlas.evaluation.baselines import user_last_place
from tagatlas.recommender import HeadConfig, ModelConfig, TagAtlas
from tagatlas.recommender.evidence.user_places import GapTrust

SEATTLE, MIAMI = (47.61, -122.33), (25.77, -80.19)
DAY = 86400.0


def _stored(user: str, day: float, where: tuple[float, float]):
    return SimpleNamespace(user_key=f"u:{user}", created_at=1.6e9 + day * DAY, lat=where[0], lon=where[1])


def test_posts_close_in_time_are_trusted_and_posts_a_year_apart_are_not():
    """Synthetic users: two posts two days apart in one city; a third a year later on the other coast."""
    stored = []
    for u in range(20):
        stored += [_stored(f"synthetic-{u}", 0, SEATTLE), _stored(f"synthetic-{u}", 2, SEATTLE), _stored(f"synthetic-{u}", 400, MIAMI)]
    trust = GapTrust().fit(stored)
    near, far, unknown = trust(np.array([2.0, 400.0, np.nan]))
    assert near > 0.9 and far < 0.1
    assert unknown == 0.5  # no pair with an unknown time was seen: one half


@pytest.fixture(scope="module")
def user_model(real_subset):
    posts = list(read_posts(real_subset))
    config = ModelConfig(evidence=["user_places"], cluster_k=0, refit=False, head=HeadConfig(max_epochs=2))
    return TagAtlas(config).fit(posts, progress=False)


def test_a_users_past_places_move_the_answer_for_their_new_post_only(user_model, tmp_path):
    model = user_model
    geo = model.geolocator_
    centre = geo.place_coords_.mean(axis=0)  # a place far from most others, so no other evidence explains it
    k = int(np.argmax(distance_km(geo.place_coords_[:, 0], geo.place_coords_[:, 1], [centre[0]] * len(geo), [centre[1]] * len(geo))))
    lat, lon = geo.place_coords_[k]
    history = [Post(id=f"synthetic-h{d}", user_id="synthetic-traveller", text="synthetic: another day out", lat=lat, lon=lon,
                    created_at=f"2021-05-0{d}T12:00:00") for d in (1, 2, 3)]
    model.add(history, progress=False)
    tuned = model.fusion_
    model.fusion_ = weighted = replace(tuned, source_place={**tuned.source_place, "user_places": 0.9})  # gathered whatever was tuned
    try:
        query = Post(id="synthetic-q", user_id="synthetic-traveller", text="synthetic: another day out", created_at="2021-05-04T12:00:00")
        ev = model.evidence([query, query.model_copy(update={"id": "synthetic-q2", "user_id": "synthetic-stranger"}),
                             query.model_copy(update={"id": "synthetic-q3", "user_id": None})])
        row = ev.sources["user_places"]
        assert int(row.place[0].argmax()) == k
        assert distance_km([row.position[0, 0]], [row.position[0, 1]], [lat], [lon])[0] < 1  # the past post's own point
        assert not row.place[1].any() and not row.place[2].any()  # no history, no user: no opinion
        assert np.isnan(row.position[1:]).all()
        assert model.predictions_from([query], model.evidence([query]), weighted)[0].places[0].place == geo.places_[k]
        pinned = model.predictions_from([query], model.evidence([query]), replace(weighted, coordinate_sources=["user_places"]))[0]
        assert pinned.location_source == "user_history" and distance_km([pinned.lat], [pinned.lon], [lat], [lon])[0] < 1
        model.save(tmp_path / "m")  # the source keeps no state of its own: a loaded model reads the same history
        again = TagAtlas.load(tmp_path / "m").evidence([query]).sources["user_places"]
        assert np.allclose(again.place[0], row.place[0]) and np.allclose(again.position[0], row.position[0])
    finally:
        model.fusion_ = tuned
        model.delete([p.id for p in history])


def test_the_user_last_place_baseline_answers_from_the_history_post_closest_in_time():
    """Synthetic history: a week in Seattle, then a week in Miami; queries in between and after, and a stranger's."""
    history = [Post(id=f"synthetic-s{d}", user_id="synthetic-u", lat=SEATTLE[0], lon=SEATTLE[1], created_at=f"2021-05-{d:02d}T12:00:00") for d in (1, 2)]
    history += [Post(id=f"synthetic-m{d}", user_id="synthetic-u", lat=MIAMI[0], lon=MIAMI[1], created_at=f"2021-05-{d:02d}T12:00:00") for d in (20, 21)]
    history.append(Post(id="synthetic-unlocated", user_id="synthetic-u", text="synthetic", created_at="2021-05-04T12:00:00"))
    queries = [Post(id="synthetic-q1", user_id="synthetic-u", created_at="2021-05-05T12:00:00"),
               Post(id="synthetic-q2", user_id="synthetic-u", created_at="2021-05-30T12:00:00"),
               Post(id="synthetic-q3", user_id="synthetic-stranger", created_at="2021-05-05T12:00:00"),
               Post(id="synthetic-q4", text="synthetic: no user")]
    assert user_last_place(history, queries) == [SEATTLE, MIAMI, None, None]


def test_a_batch_reads_each_users_history_once_for_habits_and_user_places(user_model):
    """The habits step and user_places share one store query per post that has a user (none for a post without);
    the post itself is never its own history."""
    model = user_model
    history = [Post(id=f"synthetic-r{d}", user_id="synthetic-reader", text="synthetic: a walk #synthetictag", hashtags=["synthetictag"],
                    lat=40.0, lon=-75.0, created_at=f"2021-06-0{d}T12:00:00") for d in (1, 2)]
    model.add(history, progress=False)
    store, calls, tuned = model.posts_.store, [], model.fusion_
    real_by_user = store.by_user
    store.by_user = lambda key, limit=500: calls.append(key) or real_by_user(key, limit)
    model.fusion_ = replace(tuned, source_place={**tuned.source_place, "user_places": 0.5})  # so user_places is gathered
    try:
        queries = [history[1], Post(id="synthetic-r9", user_id="synthetic-stranger", text="synthetic"), Post(id="synthetic-r8", text="synthetic")]
        ev = model.evidence(queries)
    finally:
        model.fusion_ = tuned
        del store.by_user
        model.delete([p.id for p in history])
    assert ev.sources["user_places"].place[0].any()  # the source did read the history
    assert sorted(calls) == sorted([history[1].user_key, queries[1].user_key])
    assert ev.habit_ids[0] == [history[0].id]  # its own earlier post, not itself
    assert ev.habit_ids[1] == [] and ev.habit_ids[2] == []
