"""benchmarks/personal_search.py end to end on synthetic posts (named so), and its ranking metrics by hand."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


def synthetic_posts(path: Path) -> Path:
    """24 synthetic users, 6 posts each, each user's posts about one of four cities (words, tags, coordinates)."""
    cities = [("tokyo", 35.68, 139.69), ("osaka", 34.69, 135.50), ("sapporo", 43.06, 141.35), ("fukuoka", 33.59, 130.40)]
    topics = ["ramen", "temple", "train", "garden", "night", "market"]
    rng = np.random.default_rng(0)
    lines = []
    for u in range(24):
        name, lat, lon = cities[u % 4]
        for k in range(6):
            lines.append({"id": f"{u}-{k}", "user_id": f"user{u}", "text": f"synthetic {topics[(u + k) % 6]} walk in {name} {u}",
                          "hashtags": [name, topics[(u + k) % 6]], "created_at": f"2020-01-{k + 1:02d}T10:00:00Z",
                          "lat": lat + float(rng.normal()) * 0.01, "lon": lon + float(rng.normal()) * 0.01})
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    return path


def test_query_metrics_by_hand():
    from personal_search import query_metrics

    m = query_metrics(["a", "x", "b", "y"], {"a", "b"}, k=2)
    assert m["MRR"] == 1.0 and m["recall@2"] == 0.5
    assert m["nDCG@2"] == pytest.approx(1 / (1 + 1 / np.log2(3)))
    assert query_metrics(["x", "y"], {"a"})["MRR"] == 0.0


def test_personal_search_benchmark_reports_every_ranking_with_intervals(tmp_path):
    import personal_search

    data = synthetic_posts(tmp_path / "posts.jsonl")
    doc, model = tmp_path / "doc.md", tmp_path / "model"
    assert personal_search.main(["--data", str(data), "--model", str(model), "--test-fraction", "0.3",
                                 "--min-posts", "4", "--doc", str(doc)]) == 0
    text = doc.read_text()
    users = int(re.search(r"never seen in training\): (\d+) with at least", text)[1])
    assert users >= 2
    for name in personal_search.RANKINGS:
        assert re.search(rf"^\| {re.escape(name)} \| [01]\.\d{{3}} \| [01]\.\d{{3}} \| [01]\.\d{{3}} \|$", text, re.M)
    effects = re.findall(r"([+-]\d\.\d{3}) \[([+-]\d\.\d{3}), ([+-]\d\.\d{3})\]", text)
    assert len(effects) == len(personal_search.EFFECTS) * len(personal_search.METRICS)
    assert all(float(low) <= float(mean) + 1e-3 and float(mean) <= float(high) + 1e-3 for mean, low, high in effects)
    # a model holding the held-out users' posts (another split) is refused, not measured
    with pytest.raises(SystemExit, match="holds held-out posts"):
        personal_search.main(["--data", str(data), "--model", str(model), "--test-fraction", "0.6", "--doc", str(doc)])
