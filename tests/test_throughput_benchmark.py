"""benchmarks/throughput.py's cache check: a warm embedding cache may move probabilities by float noise (the text
encoder's last bits depend on the batch) but must not change a decision; the check tells the two apart.
Synthetic enrichment records (named so)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from throughput import cache_changes  # noqa: E402

RECORD = {"id": "synthetic-1", "pred_place": "511196", "pred_place_prob": 0.180233, "pred_lat": 57.988445, "pred_lon": 56.198271,
          "pred_radius_km": 1776.5, "pred_hashtags": ["hot", "holiday"], "pred_hashtag_scores": [0.080178, 0.08], "pred_cluster": "8"}


def written(tmp_path: Path, name: str, *records: dict) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_float_noise_is_counted_and_a_changed_decision_is_named(tmp_path):
    plain = written(tmp_path, "plain.jsonl", RECORD, {**RECORD, "id": "synthetic-2"})
    assert cache_changes(plain, written(tmp_path, "same.jsonl", RECORD, {**RECORD, "id": "synthetic-2"})) == ([], 0)
    noisy = {**RECORD, "pred_place_prob": 0.180234, "pred_hashtag_scores": [0.080177, 0.08]}
    assert cache_changes(plain, written(tmp_path, "noisy.jsonl", noisy, {**RECORD, "id": "synthetic-2"})) == ([], 1)
    moved = {**RECORD, "pred_place": "524901", "pred_hashtags": ["holiday", "hot"], "pred_lat": 55.75}
    changed, noisy_only = cache_changes(plain, written(tmp_path, "moved.jsonl", RECORD, {**moved, "id": "synthetic-2"}))
    assert changed == ["synthetic-2: pred_hashtags", "synthetic-2: pred_lat", "synthetic-2: pred_place"] and noisy_only == 0
    shorter = {**RECORD, "pred_hashtag_scores": [0.080178]}
    assert cache_changes(plain, written(tmp_path, "short.jsonl", shorter, {**RECORD, "id": "synthetic-2"}))[0] == ["synthetic-1: pred_hashtag_scores"]
