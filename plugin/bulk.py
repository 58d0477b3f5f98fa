"""`tagatlas opensearch enrich`: enrich posts with the local model and write them with bulk calls (path B).

Every document is written under its post id with an `index` action, so a retry or a resumed run
overwrites instead of duplicating. Throttled items (429) are retried by opensearch-py with back-off;
items failing with a server error (5xx) and whole batches failing on connection errors are retried
here with exponential back-off. An item still failing is appended to the failure report (the post's
own record plus `_error`, so `--in FAILURES` re-runs exactly those) — never dropped. A checkpoint,
written atomically after each acknowledged batch, lets an interrupted run continue where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConnectionError as OSConnectionError, TransportError
from pydantic import ValidationError
from tqdm.auto import tqdm

from tagatlas.data import Post, ReadReport, read_posts
from tagatlas.core import write_text_atomic
from tagatlas.data import batches
from tagatlas.plugin.bodies import FIELD, check_index_name, enrichment_fields_batch, post_document
from tagatlas.recommender import TagAtlas

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """The checkpoint belongs to another input or index."""


@dataclass
class BulkReport:
    source: str
    index: str
    model: str
    read: int = 0
    written: int = 0
    failed: int = 0
    skipped_current: int = 0  # index source: documents this model already enriched (a resumed run)
    skipped_invalid: int = 0
    resumed_after: int = 0
    retries: int = 0
    seconds: float = 0.0
    failures_file: str | None = None
    failure_reasons: dict[str, int] = field(default_factory=dict)


def post_from_source(doc_id: str, source: dict) -> Post:
    """A post from a document of a source index (TagAtlas's own mapping, or one with the same field names)."""
    record = {k: source.get(k) for k in ("text", "user_id", "hashtags", "created_at", "place") if source.get(k) is not None}
    record["id"] = str(source.get("id") or doc_id)
    location = source.get("location")
    if isinstance(location, dict) and location.get("lat") is not None:
        record["lat"], record["lon"] = location["lat"], location["lon"]
    elif isinstance(location, (list, tuple)) and len(location) == 2:  # geo_point as [lon, lat]
        record["lon"], record["lat"] = location
    if source.get("image_url"):
        record["image"] = source["image_url"]
    return Post.model_validate(record)


class BulkEnricher:
    """Enrich a post file or a source index into `index`; `run` returns a BulkReport."""

    def __init__(self, model: TagAtlas, client: OpenSearch, index: str, *, checkpoint: str | os.PathLike,
                 failures: str | os.PathLike | None = None, batch_size: int = 256, chunk_size: int = 500,
                 max_retries: int = 5, initial_backoff: float = 1.0, max_backoff: float = 60.0, progress: bool = True):
        self.model, self.client, self.index = model, client, check_index_name(index)
        self.checkpoint = Path(checkpoint)
        self.failures = Path(failures) if failures else self.checkpoint.with_suffix(".failures.jsonl")
        self.batch_size, self.chunk_size = batch_size, chunk_size
        self.max_retries, self.initial_backoff, self.max_backoff = max_retries, initial_backoff, max_backoff
        self.progress = progress
        self.version = model.fingerprint_ or "unsaved"

    # -- sources ----------------------------------------------------------------------------------
    def _resume_file(self, source: Path) -> int:
        if not self.checkpoint.exists():
            return 0
        state = json.loads(self.checkpoint.read_text(encoding="utf-8"))
        if state.get("source") != str(source.resolve()) or state.get("index") != self.index:
            raise CheckpointError(f"'--checkpoint' {self.checkpoint} belongs to {state.get('source')} → {state.get('index')}, "
                                  f"not {source.resolve()} → {self.index}; give another --checkpoint")
        return int(state.get("position", 0))

    def run_file(self, source: str | os.PathLike, skip_invalid: bool = False) -> BulkReport:
        source = Path(source)
        report = BulkReport(source=str(source.resolve()), index=self.index, model=self.version, failures_file=str(self.failures))
        done = self._resume_file(source)
        read_report = ReadReport(str(source))
        posts = read_posts(source, skip_invalid=skip_invalid, report=read_report)
        state = json.loads(self.checkpoint.read_text(encoding="utf-8")) if done else {}
        for position in range(done):
            post = next(posts, None)
            if post is None:
                raise CheckpointError(f"'--checkpoint' says {done} posts were done but {source} has only {position}")
            if position == done - 1 and state.get("last_id") not in (None, post.id):
                raise CheckpointError(f"'--checkpoint' expects post {state['last_id']!r} at position {done} of {source}, "
                                      f"found {post.id!r}: the file changed; give another --checkpoint")
        report.resumed_after = done
        for key in ("written", "failed", "retries"):
            setattr(report, key, int(state.get(key, 0)))
        started = time.perf_counter()
        bar = tqdm(desc="enrich → opensearch", unit="post", initial=done, disable=not self.progress)
        position = done
        for batch in batches(posts, self.batch_size):
            self._write(batch, report)
            position += len(batch)
            report.read = position
            self._save_checkpoint({"source": report.source, "index": self.index, "model": self.version, "position": position,
                                   "last_id": batch[-1].id, "written": report.written, "failed": report.failed,
                                   "retries": report.retries})
            bar.update(len(batch))
        bar.close()
        report.read = position
        report.skipped_invalid = read_report.skipped
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def run_index(self, source_index: str, query: dict | None = None) -> BulkReport:
        """Enrich every document of `source_index` (optionally matching `query`). Resuming is by content: documents
        that `index` already holds enriched by this model are skipped, so a rerun continues where one stopped."""
        check_index_name(source_index)
        report = BulkReport(source=f"index:{source_index}", index=self.index, model=self.version, failures_file=str(self.failures))
        started = time.perf_counter()
        hits = helpers.scan(self.client, index=source_index, query={"query": query or {"match_all": {}}}, size=self.batch_size,
                            _source_excludes=[f"{FIELD}.embedding"])
        bar = tqdm(desc="enrich → opensearch", unit="doc", disable=not self.progress)
        for batch in batches(hits, self.batch_size):
            posts, bad = [], 0
            for hit in batch:
                try:
                    posts.append(post_from_source(hit["_id"], hit.get("_source", {})))
                except ValidationError as exc:
                    bad += 1
                    self._record_failures([({"id": hit["_id"]}, "invalid_source", str(exc).splitlines()[0])], report)
            current = self._already_current([p.id for p in posts])
            report.skipped_current += len(current)
            todo = [p for p in posts if p.id not in current]
            if todo:
                self._write(todo, report)
            report.read += len(batch)
            report.skipped_invalid += bad
            self._save_checkpoint({"source": report.source, "index": self.index, "model": self.version, "scanned": report.read,
                                   "written": report.written, "failed": report.failed, "skipped_current": report.skipped_current})
            bar.update(len(batch))
        bar.close()
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _already_current(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        found = self.client.mget(index=self.index, body={"ids": ids}, _source_includes=[f"{FIELD}.model", f"{FIELD}.status"])
        current = set()
        for doc in found.get("docs", []):
            meta = (doc.get("_source") or {}).get(FIELD) or {}
            if doc.get("found") and meta.get("status") == "enriched" and meta.get("model") == self.version:
                current.add(doc["_id"])
        return current

    # -- writing ----------------------------------------------------------------------------------
    def _write(self, posts: list[Post], report: BulkReport) -> None:
        latest = {p.id: p for p in posts}  # an id twice in one batch: the later record wins, written once
        posts = list(latest.values())
        try:
            result = next(self.model.predictor.stream([posts], columnar=True))  # arrays: no per-tag objects
            if result.error is not None:
                raise result.error
            fields = enrichment_fields_batch(result.decisions, result.vectors, self.version)
            docs = {p.id: post_document(p, f) for p, f in zip(posts, fields, strict=True)}
        except Exception as exc:  # a model failure on one batch must not lose it: index the posts marked failed
            log.exception("enrichment failed for a batch", extra={"posts": len(posts)})
            docs = {p.id: post_document(p, None, f"{type(exc).__name__}: {exc}") for p in posts}
        pending = dict(docs)
        failed: list[tuple[dict, str, str]] = []
        for attempt in range(self.max_retries + 1):
            retry: dict[str, dict] = {}
            try:
                results = self._send(pending)
            except (OSConnectionError, TransportError) as exc:
                status = getattr(exc, "status_code", None)
                if isinstance(status, int) and 400 <= status < 500 and status != 429:
                    raise
                retry = pending
                reason = f"{type(exc).__name__}: {exc}"
                results = {}
            else:
                for doc_id, (ok, status, error) in results.items():
                    if ok:
                        report.written += 1
                    elif status >= 500 or status == 429:
                        retry[doc_id] = pending[doc_id]
                        reason = error
                    else:
                        failed.append((pending[doc_id], f"http_{status}", error))
            if not retry:
                break
            if attempt == self.max_retries:
                failed.extend((doc, "retries_exhausted", reason) for doc in retry.values())
                break
            report.retries += 1
            delay = min(self.max_backoff, self.initial_backoff * 2 ** attempt)
            log.warning("bulk retry", extra={"documents": len(retry), "attempt": attempt + 1, "delay_s": delay, "reason": reason[:200]})
            time.sleep(delay)
            pending = retry
        if failed:
            self._record_failures(failed, report, posts={p.id: p for p in posts})

    def _send(self, docs: dict[str, dict]) -> dict[str, tuple[bool, int, str]]:
        """One pass of bulk calls; 429s retried by opensearch-py. Returns id → (ok, status, error)."""
        actions = ({"_op_type": "index", "_index": self.index, "_id": doc_id, "_source": doc} for doc_id, doc in docs.items())
        results: dict[str, tuple[bool, int, str]] = {}
        for ok, item in helpers.streaming_bulk(self.client, actions, chunk_size=self.chunk_size, max_retries=self.max_retries,
                                               initial_backoff=self.initial_backoff, max_backoff=self.max_backoff,
                                               raise_on_error=False, raise_on_exception=True):
            info = next(iter(item.values()))
            error = info.get("error")
            if isinstance(error, dict):
                error = f"{error.get('type')}: {error.get('reason')}"
            results[str(info.get("_id"))] = (bool(ok), int(info.get("status", 0)), str(error or ""))
        missing = set(docs) - set(results)
        for doc_id in missing:  # never assume success for an item the answer did not mention
            results[doc_id] = (False, 500, "no result for this document in the bulk answer")
        return results

    def _record_failures(self, failed: list[tuple[dict, str, str]], report: BulkReport, posts: dict | None = None) -> None:
        self.failures.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for doc, kind, error in failed:
            post = (posts or {}).get(doc.get("id"))
            record = json.loads(post.model_dump_json()) if post is not None else {"id": doc.get("id")}
            record["_error"] = {"kind": kind, "error": error[:1000], "at": datetime.now().astimezone().isoformat()}
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            report.failure_reasons[kind] = report.failure_reasons.get(kind, 0) + 1
        with open(self.failures, "a", encoding="utf-8") as handle:
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        report.failed += len(failed)

    def _save_checkpoint(self, state: dict) -> None:
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.checkpoint, json.dumps(state))

