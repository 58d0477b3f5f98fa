"""Resumable enrichment of a post file: every input post is written once, in input order.

The output is JSON Lines. On start, complete lines already in the output are checked against the
input (same ids, same order) and skipped; a torn last line from a crash is cut off. Each batch is
written with one write and an fsync, so an interrupted run loses at most the batch in flight,
which the next run redoes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tqdm.auto import tqdm

from tagatlas.data import Post, ReadReport, batches, read_posts
from tagatlas.recommender import Prediction, TagAtlas


class EnrichResumeError(ValueError):
    """The output file does not continue this input (other ids or order)."""


def enriched_record(post: Post, pred: Prediction) -> dict:
    """The enriched record of one post from its `Prediction` (`enrich_file` writes the same fields from
    `Decisions.records`, without building the objects)."""
    record = post.model_dump(mode="json")
    record.update({
        "pred_place": pred.places[0].place if pred.places else None,
        "pred_place_name": pred.places[0].name if pred.places else None,
        "pred_place_prob": pred.places[0].prob if pred.places else None,
        "pred_lat": pred.lat, "pred_lon": pred.lon, "pred_radius_km": pred.radius_km, "pred_location_source": pred.location_source,
        "pred_hashtags": [t.tag for t in pred.hashtags],
        "pred_hashtag_scores": [t.score for t in pred.hashtags],
        "pred_cluster": pred.cluster,
    })
    return record


def _completed_ids(out: Path) -> list[str]:
    """Ids of the complete lines of an earlier enrichment output; a torn trailing line is truncated away. A file
    that is not an enrichment output (a line that is no enriched post) is refused, never truncated."""
    if not out.exists():
        return []
    ids, good_bytes = [], 0
    with open(out, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                break  # the torn tail of an interrupted run
            try:
                record = json.loads(raw)
                ids.append(str(record["id"]))
                if "pred_place" not in record:
                    raise KeyError("pred_place")
            except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
                raise EnrichResumeError(f"--out {out}: exists and line {lineno} is not an enriched post ({type(exc).__name__}); "
                                        "give a new --out, or --overwrite to replace the file") from exc
            good_bytes += len(raw)
    if good_bytes != out.stat().st_size:
        with open(out, "rb+") as handle:
            handle.truncate(good_bytes)
    return ids


def _check_paths(source: Path, out: Path, overwrite: bool) -> None:
    """Refuse an output that is the input itself or not a file, and (with `overwrite`) empty an earlier output."""
    if out.exists() and not out.is_file():
        raise EnrichResumeError(f"--out {out}: exists and is not a regular file")
    if out.exists() and source.exists() and os.path.samefile(source, out):
        raise EnrichResumeError(f"--out {out} is the input file itself; write to another file")
    if overwrite and out.exists():
        out.write_bytes(b"")


def enrich_file(model: TagAtlas, source: str | os.PathLike, out: str | os.PathLike, *, batch_size: int = 256,
                skip_invalid: bool = False, progress: bool = True, photo_gps: bool = False, overwrite: bool = False,
                image_root: str | os.PathLike | None = None) -> dict:
    """Enrich `source` into `out`, resuming where an earlier run stopped (`overwrite`: start over). Returns counts.

    `photo_gps`: write a photo's exact EXIF position as pred_lat/pred_lon (default: coarsened to its place).
    `image_root`: the folder images may be read from (default: the input's folder)."""
    out, source = Path(out), Path(source)
    _check_paths(source, out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _completed_ids(out)
    report = ReadReport(str(source))
    posts = read_posts(source, skip_invalid=skip_invalid, report=report, image_root=image_root)
    for position, expected in enumerate(done):
        post = next(posts, None)
        if post is None or post.id != expected:
            raise EnrichResumeError(f"{out}: line {position + 1} holds post {expected!r} but the input has "
                                    f"{post.id if post else 'no more posts'!r} there; write to a new --out or give --overwrite")
    written = 0
    bar = tqdm(desc="enrich", unit="post", disable=not progress, initial=len(done))
    with open(out, "ab") as handle:
        for result in model.predictor.stream(batches(posts, batch_size), columnar=True):  # arrays: no per-tag objects
            if result.error is not None:
                raise result.error
            batch = result.posts
            data = "".join(json.dumps({**p.model_dump(mode="json"), **fields}, ensure_ascii=False) + "\n"
                           for p, fields in zip(batch, result.decisions.records(photo_gps), strict=True))
            handle.write(data.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
            written += len(batch)
            bar.update(len(batch))
    bar.close()
    return {"resumed_after": len(done), "written": written, "total": len(done) + written, "skipped_invalid": report.skipped,
            "skip_reasons": report.reasons, "images_refused": report.images_refused, "image_reasons": report.image_reasons}
