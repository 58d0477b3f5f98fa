"""benchmarks/profile_enrich.py --stages: every step it times lies on enrichment's path (a step renamed or moved
elsewhere would read 0 s, or fail to patch; a plug-in source reads 0 s where fusion gives it no weight), and the timers
are taken off again afterwards."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from profile_enrich import timed_stages  # noqa: E402

from tagatlas.data import read_posts  # noqa: E402
from tagatlas.enrich import enrich_file  # noqa: E402
from tagatlas.recommender import TagAtlas  # noqa: E402
import tagatlas.recommender.predictor as predictor_module  # noqa: E402


def test_each_timed_step_runs_during_enrichment_and_is_restored(model_dir, real_subset, tmp_path):
    model = TagAtlas.load(model_dir)
    source = tmp_path / "posts.jsonl"
    source.write_text("".join(p.model_dump_json(exclude_none=True) + "\n" for p in list(read_posts(real_subset))[:40]))
    gather, search = predictor_module.gather_evidence, model.posts_.search
    with timed_stages(model) as spent:
        enrich_file(model, source, tmp_path / "out.jsonl", batch_size=16, progress=False)
    assert len(spent) >= 12
    fixed = {name: seconds for name, seconds in spent.items() if not name.startswith("  source ")}
    assert [name for name, seconds in fixed.items() if seconds <= 0] == []  # each step was called, so it is timed
    assert any(seconds > 0 for name, seconds in spent.items() if name.startswith("  source "))  # a plug-in with weight
    assert predictor_module.gather_evidence is gather and model.posts_.search == search  # no timer left behind
    assert "search" not in vars(model.posts_)
