"""End to end on a small real subset (2,500 real tweets): train, suggest, enrich, evaluate, online updates."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import SHARED, cli, write_jsonl
from tagatlas.data import Post, extract_hashtags, read_posts
from tagatlas.enrich import EnrichResumeError, enrich_file, enriched_record
from tagatlas.evaluation import NoTestPostsError, evaluate
from tagatlas.recommender import ModelFolderError, TagAtlas
from tagatlas.recommender.tag_match import TagMatcher



def test_evaluate_contract_and_schema(model_dir, real_subset, tmp_path):
    out = tmp_path / "eval.json"
    proc = cli("evaluate", "--model", model_dir, "--data", real_subset, "--json", out)
    result = json.loads(out.read_text())
    assert result["n_queries"] > 100 and result["n_users"] == result["details"]["test_posts"]  # tweets: one user each
    assert set(result["geo"]["baselines"]) == {"most_frequent", "tfidf_logreg", "knn_vote", "classifier_only", "user_last_place"}
    assert "tagatlas" in proc.stdout and "tfidf_knn" in proc.stdout
    checker = SHARED / "tools" / "check_eval_json.py"
    if checker.exists():
        check = subprocess.run([sys.executable, str(checker), str(out)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout
    # Metrics are not constant: the geo baselines differ from each other.
    accs = {m["acc_at_km"]["2500"] for m in result["geo"]["baselines"].values()}
    assert len(accs) > 1
    # How sure each lead is: the ratio the tables give, inside an interval over held-out users.
    for section in ("geo", "geo_with_tags"):
        figures, lead = result[section], result["uncertainty"][section]
        best = max(b["acc_at_km"]["161"] for b in figures["baselines"].values())
        assert lead["acc_161"]["ratio"] == pytest.approx(figures["tagatlas"]["acc_at_km"]["161"] / best)
        best_median = min(b["median_km"] for b in figures["baselines"].values())
        assert lead["median_km"]["ratio"] == pytest.approx(figures["tagatlas"]["median_km"] / best_median)
        for figure in lead.values():
            assert figure["low"] <= figure["ratio"] <= figure["high"] and figure["low"] < figure["high"]
    tags, f1 = result["hashtags"], result["uncertainty"]["hashtags"]["f1_at_5"]
    assert f1["ratio"] == pytest.approx(tags["tagatlas"]["f1_at_5"] / max(b["f1_at_5"] for b in tags["baselines"].values()))
    assert f1["low"] <= f1["ratio"] <= f1["high"]
    own = result["uncertainty"]["figures"]["geo_with_tags"]
    assert own["acc_161"]["value"] == pytest.approx(result["geo_with_tags"]["tagatlas"]["acc_at_km"]["161"])
    assert own["median_km"]["value"] == pytest.approx(result["geo_with_tags"]["tagatlas"]["median_km"])
    ece = result["uncertainty"]["figures"]["place_ece"]
    assert ece["value"] == pytest.approx(result["calibration"]["place_ece"]) and ece["low"] < ece["high"]
    new_hr = result["uncertainty"]["figures"].get("new_tag_hr_at_10")
    assert (new_hr is None) == (tags["tagatlas"]["new_tag_hr_at_10"] is None)
    if new_hr is not None:
        assert new_hr["value"] == pytest.approx(tags["tagatlas"]["new_tag_hr_at_10"]) and new_hr["low"] <= new_hr["high"]


def test_evaluation_never_shows_the_answer(model_dir, real_subset, monkeypatch):
    model = TagAtlas.load(model_dir)
    posts = list(read_posts(real_subset))
    seen = []
    original = model.evidence

    def spy(queries):
        for q in queries:
            assert extract_hashtags(model.encoder.prepare_text(q.text)) == []  # never in the text the encoder reads
        seen.extend(queries)
        return original(queries)

    monkeypatch.setattr(model, "evidence", spy)
    indexed_before = model.posts_.store.post_ids()
    result = evaluate(model, posts, progress=False)
    n = result["n_queries"]
    posting_form, ingest = seen[:n], seen[n:]
    assert posting_form and all(q.hashtags == [] for q in posting_form)  # the pass hashtags and `geo` are scored on
    # The ingest setting (`geo_with_tags`) reads the located queries' hashtags as input and is scored on places only.
    assert len(ingest) == result["details"]["geo_queries"] and all(q.has_location for q in ingest)
    assert any(q.hashtags for q in ingest)
    assert not {q.id for q in seen} & indexed_before  # no query was in the index before it was asked


def test_evaluate_refuses_a_file_of_training_users(model_dir, real_subset, tmp_path):
    model = TagAtlas.load(model_dir)
    trained = [p for p in read_posts(real_subset) if p.id in model.posts_.store.post_ids()][:50]
    with pytest.raises(NoTestPostsError):
        evaluate(model, trained, progress=False)


def test_suggest_cli(model_dir):
    proc = cli("suggest", "--model", model_dir, "--text", "we're hiring! retail sales associate, apply now", "--json")
    pred = json.loads(proc.stdout)
    assert len(pred["places"]) == 5 and abs(sum(p["prob"] for p in pred["places"])) <= 1.0 + 1e-6
    assert pred["radius_km"] > 0 and -90 <= pred["lat"] <= 90
    assert pred["hashtag_candidates"] and pred["hashtag_candidates"][0]["score"] >= pred["hashtag_candidates"][-1]["score"]
    bad = cli("suggest", "--model", model_dir, check=False)
    assert bad.returncode == 2 and "give --text, --image or both" in bad.stderr


def test_enrich_resumes_without_loss_or_duplicates(model_dir, real_subset, tmp_path):
    source = tmp_path / "in.jsonl"
    write_jsonl(source, [json.loads(p.model_dump_json()) for p in list(read_posts(real_subset))[:120]])
    model = TagAtlas.load(model_dir)
    full = tmp_path / "full.jsonl"
    enrich_file(model, source, full, batch_size=50, progress=False)
    # Simulate a crash: keep 70 complete lines and half of the 71st.
    lines = full.read_bytes().splitlines(keepends=True)
    partial = tmp_path / "partial.jsonl"
    partial.write_bytes(b"".join(lines[:70]) + lines[70][:40])
    counts = enrich_file(model, source, partial, batch_size=50, progress=False)
    assert counts["resumed_after"] == 70 and counts["total"] == 120
    resumed = [json.loads(l) for l in partial.read_text().splitlines()]
    assert [r["id"] for r in resumed] == [json.loads(l)["id"] for l in lines]
    for r in resumed:
        assert {"pred_place", "pred_lat", "pred_lon", "pred_radius_km", "pred_hashtags"} <= set(r)
    # enrichment writes from arrays (Decisions.records); the records equal those built from Prediction objects
    posts = list(read_posts(source))
    expected = [json.loads(json.dumps(enriched_record(p, r))) for p, r in zip(posts, model.predict(posts, batch_size=50))]
    assert [json.loads(l) for l in lines] == expected
    assert any(r["pred_hashtags"] for r in expected) and any(r["pred_cluster"] is not None for r in expected)
    # An output that belongs to another input is refused, not appended to.
    other = tmp_path / "other.jsonl"
    write_jsonl(other, [{"id": "someone-else", "text": "x"}])
    with pytest.raises(EnrichResumeError):
        enrich_file(model, source, other, progress=False)


def test_online_add_makes_a_new_tag_recommendable(model_dir):
    model = TagAtlas.load(model_dir)
    tag = "synthetictagatlastag"
    assert tag not in model.hashtags_.tags_
    text = "synthetic test post: the glass pyramid cafe opens on the harbour"
    before = model.predict([Post(id="q", text=text)])[0]
    assert tag not in [t.tag for t in before.hashtag_candidates]
    model.add([Post(id="synthetic-new", user_id="synthetic-a", text=f"{text} #{tag}", hashtags=[tag], lat=35.0, lon=139.0)])
    after = model.predict([Post(id="q", text=text)])[0]
    hit = next(t for t in after.hashtag_candidates if t.tag == tag)
    assert "neighbours" in hit.sources and "synthetic-new" in hit.from_posts
    assert "synthetic-new" in after.neighbours
    assert model.delete(["synthetic-new"]) == 1
    gone = model.predict([Post(id="q", text=text)])[0]
    assert tag not in [t.tag for t in gone.hashtag_candidates]


def test_habits_personalise_only_their_user(model_dir):
    model = TagAtlas.load(model_dir)
    habit = "synthetichabittag"
    history = [Post(id=f"synthetic-h{i}", user_id="synthetic-user", text=f"synthetic morning run number {i} by the river",
                    hashtags=[habit], created_at=f"2015-02-0{i + 1}T07:00:00Z") for i in range(3)]
    model.add(history)
    query = "synthetic evening run by the river"
    mine = model.predict([Post(id="q1", user_id="synthetic-user", text=query)])[0]
    theirs = model.predict([Post(id="q2", user_id="someone-else", text=query)])[0]
    hit = next(t for t in mine.hashtag_candidates if t.tag == habit)
    assert hit.sources.get("habits", 0) > 0
    assert all(t.sources.get("habits", 0) == 0 for t in theirs.hashtag_candidates)
    dated = model.evidence([Post(id="q3", user_id="synthetic-user", text=query, created_at="2015-02-11T07:00:00Z")])
    assert sorted(np.round(dated.habit_ages[0], 3).tolist()) == [8.0, 9.0, 10.0]  # days since each past post, for recency decay


def test_save_load_roundtrip_and_corrupt_folders(model_dir, tmp_path):
    model = TagAtlas.load(model_dir)
    posts = [Post(id="a", text="snow day in boston"), Post(id="b", text="istanbul trafik")]
    first = [p.model_dump() for p in model.predict(posts)]
    model.save(tmp_path / "copy")
    again = [p.model_dump() for p in TagAtlas.load(tmp_path / "copy").predict(posts)]
    assert first == again
    (tmp_path / "copy" / "weights.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="missing weights.safetensors"):
        TagAtlas.load(tmp_path / "copy")
    proc = cli("suggest", "--model", tmp_path / "copy", "--text", "hi", check=False)
    assert proc.returncode == 2 and "incomplete model folder" in proc.stderr
    proc = cli("evaluate", "--model", tmp_path / "nope", "--data", tmp_path / "x.jsonl", check=False)
    assert proc.returncode == 2 and "not a model folder" in proc.stderr


def test_posts_with_a_photo_or_without_text(model_dir, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    photo = tmp_path / "china.jpg"
    Image.fromarray(load_sample_image("china.jpg")).save(photo)
    model = TagAtlas.load(model_dir)
    preds = model.predict([Post(id="img", image=str(photo)), Post(id="both", text="temple visit", image=str(photo)),
                           Post(id="empty")])
    assert [p.post_id for p in preds] == ["img", "both", "empty"]
    for p in preds:
        assert p.places and -90 <= p.lat <= 90 and p.radius_km > 0
    proc = cli("suggest", "--model", model_dir, "--image", photo)
    assert proc.returncode == 0 and "place" in proc.stdout


@pytest.mark.parametrize("command", ["train", "enrich", "suggest", "evaluate", "demo"])
def test_every_command_has_help(command):
    proc = cli(command, "--help")
    assert "Usage" in proc.stdout and "--" in proc.stdout


def test_train_names_the_bad_field(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "1", "text": "x", "lat": 200, "lon": 0}])
    proc = cli("train", "--data", bad, "--out", tmp_path / "m", check=False)
    assert proc.returncode == 2 and "bad.jsonl:1" in proc.stderr and "'lat'" in proc.stderr
    assert not (tmp_path / "m").exists()


def test_new_tags_from_evaluation_history_are_measured(model_dir, real_subset, tmp_path):
    """Synthetic users (named so) whose history introduces tags unseen in training: the new-tag metric sees them."""
    model = TagAtlas.load(model_dir)
    posts = [p for p in read_posts(real_subset) if p.id not in model.posts_.store.post_ids()][:100]
    for u in range(4):
        tag = f"synthnewtag{u}"
        phrase = f"synthetic user {u} writes about the lighthouse festival number {u} again"
        for j in range(2):
            posts.append(Post(id=f"synthetic-{u}-{j}", user_id=f"synthetic-user-{u}", text=f"{phrase} #{tag}", hashtags=[tag],
                              created_at=f"2015-02-0{j + 1}T10:00:00Z", lat=35.0 + u, lon=139.0))
    result = evaluate(model, posts, progress=False)
    assert result["details"]["new_tag_queries"] == 4 and result["details"]["history_posts"] == 4
    assert result["hashtags"]["tagatlas"]["new_tag_hr_at_10"] == 1.0
    assert result["hashtags"]["baselines"]["popularity"]["new_tag_hr_at_10"] == 0.0
    assert 0.0 <= result["details"]["radius_coverage"] <= 1.0


def test_tiny_training_set_still_trains_and_evaluates(tweets_path, tmp_path):
    """60 real tweets: one place class, no tag vocabulary. Everything degrades gracefully, nothing crashes."""
    from tagatlas.recommender import ModelConfig

    posts = []
    for post in read_posts(tweets_path):
        posts.append(post)
        if len(posts) == 60:
            break
    model = TagAtlas(ModelConfig()).fit(posts[:50], progress=False)
    result = evaluate(model, posts, progress=False)
    assert result["n_queries"] == 10 and result["hashtags"]["tagatlas"]["n"] == sum(bool(p.hashtags) for p in posts[50:])
    pred = model.predict([Post(id="x", text="hello")])[0]
    assert pred.places and pred.radius_km > 0


def test_demo_command_on_a_small_real_data_root(real_subset, tmp_path):
    """The README's main job, on a data root holding one small real dataset."""
    root = tmp_path / "data" / "subset"
    root.mkdir(parents=True)
    (root / "posts.jsonl.gz").write_bytes(real_subset.read_bytes())
    proc = cli("demo", "--data-root", tmp_path / "data", "--out", tmp_path / "runs")
    assert "### subset" in proc.stdout and "tfidf_logreg" in proc.stdout
    enriched = [json.loads(l) for l in (tmp_path / "runs" / "subset" / "enriched_sample.jsonl").read_text().splitlines()]
    assert enriched and all("pred_hashtags" in r and "pred_radius_km" in r for r in enriched)
    result = json.loads((tmp_path / "runs" / "subset" / "eval.json").read_text())
    assert result["n_queries"] > 0 and (tmp_path / "runs" / "subset" / "model" / "index.faiss").is_file()
    assert (tmp_path / "runs" / "subset" / "model" / "graph" / "graph.json").is_file()  # clustered in training
    assert sum(r.get("pred_cluster") is not None for r in enriched) >= 0.9 * len(enriched)  # posts join them


def test_acknowledged_writes_survive_without_an_index_save(model_dir, tmp_path):
    """A serving model commits posts to its store; if it dies before saving the index, loading replays them."""
    import shutil

    folder = tmp_path / "serving"
    shutil.copytree(model_dir, folder)
    serving = TagAtlas.load(folder, writable_store=True)
    before = serving.posts_.store.generation()
    serving.add([Post(id="synthetic-ack", user_id="synthetic-z", text="synthetic lighthouse marathon #synthackedtag",
                      hashtags=["synthackedtag"], lat=10.0, lon=10.0)])
    assert serving.posts_.store.generation() == before + 1
    del serving  # no save_serving_index: as after kill -9
    reloaded = TagAtlas.load(folder)
    assert reloaded.posts_.index.count() == reloaded.posts_.store.count()
    pred = reloaded.predict([Post(id="q", text="synthetic lighthouse marathon")])[0]
    assert "synthetic-ack" in pred.neighbours
    # After an explicit index save the next load needs no replay, and deletes are replayed too.
    serving = TagAtlas.load(folder, writable_store=True)
    serving.posts_.save_serving_index(folder)
    serving.delete(["synthetic-ack"])
    del serving
    assert "synthetic-ack" not in TagAtlas.load(folder).predict([Post(id="q", text="synthetic lighthouse marathon")])[0].neighbours
    with pytest.raises(ValueError, match="writable_store"):
        TagAtlas.load(model_dir).posts_.save_serving_index(folder)


def test_predictions_do_not_depend_on_the_batch(model_dir, real_subset):
    model = TagAtlas.load(model_dir)
    posts = [p.model_copy(update={"hashtags": []}) for p in list(read_posts(real_subset))[-60:]]
    together = model.predict(posts)
    alone = [model.predict([p])[0] for p in posts]
    for a, b in zip(together, alone):  # batched BLAS may differ in the last float bits, never in the decisions
        assert [p.place for p in a.places] == [p.place for p in b.places]
        assert [t.tag for t in a.hashtag_candidates] == [t.tag for t in b.hashtag_candidates]
        assert a.neighbours == b.neighbours and (a.lat, a.lon, a.radius_km) == (b.lat, b.lon, b.radius_km)
        assert all(abs(x.prob - y.prob) < 1e-4 for x, y in zip(a.places, b.places))


def test_cluster_command_then_suggestions_and_new_posts_carry_clusters(model_dir, tmp_path):
    """`tagatlas cluster` clusters the real subset; queries and online posts join clusters without a rebuild."""
    import shutil

    from tagatlas.data import Post
    from tagatlas.recommender import TagAtlas

    folder = tmp_path / "clustered"
    shutil.copytree(model_dir, folder)
    info = json.loads(cli("cluster", "--model", folder).stdout.strip().splitlines()[-1])
    assert info["clusters"] > 5 and info["posts"] > 1500 and info["largest"] < info["posts"] / 2
    assert set(info["modality_confidence"]) == {"content", "hashtags", "location"}
    out = json.loads(cli("suggest", "--model", folder, "--text", "snow storm closing schools again", "--json").stdout)
    assert out["cluster"] is not None and abs(sum(out["cluster_contributions"].values()) - 1) < 1e-3
    m = TagAtlas.load(folder, writable_store=True)
    sizes = m.posts_.store.clusters.sizes()
    count = m.posts_.store.count()
    new_post = Post(id="synthetic-cluster-1", text="snow storm closing schools again", hashtags=["synthbrandnewtag"], lat=42.36, lon=-71.06)
    pending = m.ingest.prepare_add([new_post])
    assert m.posts_.store.count() == count and not m.posts_.store.rowids(["synthetic-cluster-1"])  # preparing writes nothing
    assert m.hashtags_.matcher_ is not None and "synthbrandnewtag" not in m.hashtags_.matcher_
    # the commit (a service's write lock) runs no model: the new tag and the index vector were computed beforehand
    def no_model(*args, **kwargs):
        raise AssertionError("a model ran inside commit_add")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(m.encoder.text, "encode", no_model)
        patch.setattr(m.reader.head_, "predict", no_model)
        pred = m.ingest.commit_add(pending)[0]
    assert m.posts_.store.count() == count + 1 and m.posts_.store.rowids(["synthetic-cluster-1"])
    assert "synthbrandnewtag" in m.hashtags_.matcher_
    rowid = m.posts_.store.rowids(["synthetic-cluster-1"])["synthetic-cluster-1"]
    np.testing.assert_allclose(m.posts_.store.vectors([rowid])[0], m.embed([new_post])[0], atol=1e-5)
    reference = TagMatcher().fit(["synthbrandnewtag"], m.encoder.text)
    np.testing.assert_allclose(m.hashtags_.matcher_.vectors_[-1], reference.vectors_[0], atol=1e-5)
    assert pred.cluster is not None and "location" in pred.cluster_contributions
    after = m.posts_.store.clusters.sizes()
    assert after[int(pred.cluster)] == sizes.get(int(pred.cluster), 0) + 1  # joined, nothing rebuilt
    # personalised search: the user's clusters are part of their profile and re-rank hits, with the reason given
    mine = m.ingest.predict_and_add([Post(id="synthetic-cluster-2", user_id="synthetic-clusterer", text="snow storm closing schools again",
                                   hashtags=["synthsnowday"], lat=42.36, lon=-71.06)])[0]
    res = m.search("snow storm closing schools", user_id="synthetic-clusterer", k=20)
    assert res.profile.top_clusters == {mine.cluster: 1.0}
    mates = [h for h in res.hits if h.cluster == mine.cluster]
    assert mates and all(h.reasons.get("your_cluster") == mine.cluster for h in mates)
    assert not any("your_cluster" in h.reasons for h in m.search("snow storm closing schools", k=20).hits)
    # a text-only query and the same text with a location can be told apart: location votes only when present
    no_loc = m.predict([Post(id="q", text="snow storm closing schools again")])[0]
    assert no_loc.cluster_contributions.get("location", 0) == 0
    # the clusterer is part of the model folder
    m.save(tmp_path / "saved")
    assert TagAtlas.load(tmp_path / "saved").graph_ is not None
    lines = cli("trends", "--model", folder, "--z", "0", "--min-posts", "1").stdout.strip().splitlines()
    reports = [json.loads(line) for line in lines]
    assert reports and all(r["recent_posts"] >= 1 and r["example_post_ids"] for r in reports)
    assert [r["z"] for r in reports] == sorted((r["z"] for r in reports), reverse=True)
    shutil.copytree(model_dir, tmp_path / "unclustered")
    shutil.rmtree(tmp_path / "unclustered" / "graph")  # as `train --cluster-k 0` leaves it: no graph part, none named
    manifest = json.loads((tmp_path / "unclustered" / "model.json").read_text())
    del manifest["parts"]["graph"]
    (tmp_path / "unclustered" / "model.json").write_text(json.dumps(manifest))
    unclustered = cli("trends", "--model", tmp_path / "unclustered", check=False)
    assert unclustered.returncode != 0 and "tagatlas cluster" in unclustered.stderr
    bad = cli("cluster", "--model", folder, "--fusion", "middle", check=False)
    assert bad.returncode != 0 and "--fusion" in bad.stderr
    bad = cli("cluster", "--model", folder, "--edge-weights", "softmax", check=False)
    assert bad.returncode != 0 and "--edge-weights" in bad.stderr and "random-walk" in bad.stderr
    walk = json.loads(cli("cluster", "--model", folder, "--edge-weights", "random-walk", "--confidence", "node").stdout.strip().splitlines()[-1])
    assert walk["edge_weights"] == "random-walk" and set(walk["modality_confidence"].values()) == {1.0}
    assert TagAtlas.load(folder).graph_.edge_weights == "random-walk"  # saved with the clusterer


def test_neighbour_table_follows_adds_and_deletes_as_a_rebuild_would(model_dir):
    from tagatlas.recommender.neighbours import NeighbourTable

    model = TagAtlas.load(model_dir)
    model.predict([Post(id="q", text="synthetic warm-up")])  # builds the in-memory table
    live = model.posts_.table()
    model.add([Post(id=f"synthetic-t{i}", user_id="synthetic-u", text=f"synthetic harbour walk {i}", hashtags=[f"synthetictag{i}", "nyc"],
                    lat=40.7 + i / 100, lon=-74.0) for i in range(5)] + [Post(id="synthetic-nowhere", text="synthetic no place")])
    model.delete(["synthetic-t2", "synthetic-nowhere"])
    assert model.posts_.table() is live  # kept in step, not rebuilt
    fresh = NeighbourTable(model.geolocator_.class_of, model.hashtags_.tags_).load(model.posts_.store)
    rows = np.flatnonzero(fresh.valid)
    assert np.array_equal(np.flatnonzero(live.valid), rows) and fresh.generation == live.generation
    assert live.post_ids[rows].tolist() == fresh.post_ids[rows].tolist()
    assert np.array_equal(live.cls[rows], fresh.cls[rows])
    assert np.allclose(live.lat[rows], fresh.lat[rows], equal_nan=True)
    assert [[live.tags[g] for g in t] for t in live.row_tags[rows]] == [[fresh.tags[g] for g in t] for t in fresh.row_tags[rows]]
    # A write that bypasses the model (straight into the store) is noticed: the table is rebuilt from the store.
    model.posts_.store.delete(["synthetic-t0"])
    assert model.posts_.table() is not live and "synthetic-t0" not in (t := model.posts_.table()).post_ids[t.valid].tolist()


def test_a_failing_batch_in_a_stream_is_reported_and_the_stream_goes_on(model_dir, monkeypatch):
    model = TagAtlas.load(model_dir)
    real = model.reader.features

    def features(batch, **kwargs):
        if any(p.id == "boom" for p in batch):
            raise RuntimeError("synthetic encoder failure")
        return real(batch, **kwargs)

    monkeypatch.setattr(model.reader, "features", features)
    batches = [[Post(id="a", text="snow in boston")], [Post(id="boom", text="x")], [Post(id="c", text="istanbul")]]
    results = list(model.predictor.stream(batches))
    assert [r.error is None for r in results] == [True, False, True]
    assert "synthetic encoder failure" in str(results[1].error) and results[1].predictions == []
    assert [r.predictions[0].post_id for r in (results[0], results[2])] == ["a", "c"]
    assert results[2].vectors.shape == (1, model.index_dim)
    with pytest.raises(RuntimeError, match="synthetic encoder failure"):
        model.predict([p for b in batches for p in b], batch_size=1)


def test_re_enrichment_reads_vectors_from_the_cache_and_writes_the_same_output(model_dir, real_subset, tmp_path):
    source = tmp_path / "in.jsonl"
    write_jsonl(source, [json.loads(p.model_dump_json()) for p in list(read_posts(real_subset))[:80]])
    cache = tmp_path / "cache.sqlite"
    first = json.loads(cli("enrich", "--model", model_dir, "--in", source, "--out", tmp_path / "a.jsonl", "--cache-path", cache).stdout)
    second = json.loads(cli("enrich", "--model", model_dir, "--in", source, "--out", tmp_path / "b.jsonl", "--cache-path", cache).stdout)
    assert first["embedding_cache"]["misses"] == 80 and first["embedding_cache"]["hits"] == 0
    assert second["embedding_cache"] == {"path": str(cache), "hits": 80, "misses": 0}
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    off = json.loads(cli("enrich", "--model", model_dir, "--in", source, "--out", tmp_path / "c.jsonl", "--no-cache").stdout)
    assert "embedding_cache" not in off and (tmp_path / "c.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()


def test_train_resumes_from_its_checkpoint_folder_and_removes_it_when_done(model_dir, tweets_path, tmp_path):
    assert not (model_dir.parent / f".{model_dir.name}.checkpoint").exists()  # the fixture's run cleaned up after itself
    data = tmp_path / "small.jsonl"
    write_jsonl(data, [p.model_dump_json() for p, _ in zip(read_posts(tweets_path), range(120))])
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "head-fit.pt").write_bytes(b"cut short by a crash")  # unreadable: ignored, training starts over
    proc = cli("train", "--data", data, "--out", tmp_path / "m", "--checkpoint-dir", ckpt)
    assert "resuming from checkpoint" in proc.stderr and not ckpt.exists()
    assert TagAtlas.load(tmp_path / "m").predict([Post(id="x", text="hello")])[0].places
