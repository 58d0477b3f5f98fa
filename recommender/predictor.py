"""Prediction for a trained model: each batch's evidence gathered (`gather.py`), fused and decided
(`decisions.py`), batch after batch. Split from `model.py`, which it serves as `TagAtlas.predictor`; `TagAtlas.predict`
is its one-call entry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from tagatlas.data import Post
from tagatlas.recommender.decisions import decide, to_predictions
from tagatlas.recommender.fusion import Evidence, FusionParams
from tagatlas.recommender.gather import gather_evidence
from tagatlas.recommender.schema import Decisions, Prediction

if TYPE_CHECKING:
    from tagatlas.recommender.model import TagAtlas


@dataclass
class BatchResult:
    """One batch of `Predictor.stream`: its posts with their predictions and index-space vectors, or the error."""

    posts: list[Post]
    predictions: list[Prediction]  # empty in a columnar stream
    vectors: np.ndarray
    error: Exception | None = None
    decisions: Decisions | None = None  # a columnar stream's predictions, as arrays


class Predictor:
    """Places, coordinates and hashtags for posts: `predict` (a list), `with_vectors` (plus index-space vectors from
    the same encoder pass), `stream` (batch after batch), and `evidence` / `from_evidence` for ablations."""

    def __init__(self, model: "TagAtlas"):
        self.model = model

    def evidence(self, posts: list[Post]) -> Evidence:
        """The fusion inputs for a batch (classifier outputs, neighbours, habits): for baselines and ablations."""
        posts = list(posts)
        return gather_evidence(self.model, posts, self.model.features(posts))[0]

    def decide(self, ev: Evidence, n_candidates: int = 20, params: FusionParams | None = None) -> Decisions:
        """Fusion and every decision for a batch, as arrays (`decisions.decide`)."""
        model = self.model
        return decide(ev, params or model.fusion_, model.geolocator_, model.hashtags_, n_candidates)

    def from_evidence(self, posts: list[Post], ev: Evidence, params: FusionParams | None = None,
                      n_candidates: int = 20) -> list[Prediction]:
        """Predictions from precomputed evidence, optionally with other fusion parameters."""
        return to_predictions(list(posts), ev, self.decide(ev, n_candidates, params), self.model.geolocator_.place_coords_list_)

    def predict(self, posts: list[Post], *, batch_size: int = 512, progress: bool = False, n_candidates: int = 20) -> list[Prediction]:
        """Places, coordinates with a radius, and ranked hashtags for each post (hashtags in its text are masked)."""
        return self.with_vectors(posts, batch_size=batch_size, progress=progress, n_candidates=n_candidates)[0]

    def with_vectors(self, posts: list[Post], *, batch_size: int = 512, progress: bool = False,
                     n_candidates: int = 20) -> tuple[list[Prediction], np.ndarray]:
        """`predict` plus each post's vector in the index space (what `TagAtlas.embed` returns), from one encoder
        pass: enrichment that stores embeddings (OpenSearch) must not encode twice."""
        out: list[Prediction] = []
        vectors: list[np.ndarray] = []
        chunks = [list(posts[start : start + batch_size]) for start in range(0, len(posts), batch_size)]
        bar = tqdm(total=len(posts), desc="predict", unit="post", disable=not progress or len(posts) <= batch_size)
        for result in self.stream(chunks, n_candidates=n_candidates):
            if result.error is not None:
                raise result.error
            out.extend(result.predictions)
            vectors.append(result.vectors)
            bar.update(len(result.posts))
        bar.close()
        return out, (np.concatenate(vectors) if vectors else np.zeros((0, self.model.index_dim), np.float32))

    def stream(self, batches: Iterable[Sequence[Post]], *, n_candidates: int = 20, columnar: bool = False) -> Iterator[BatchResult]:
        """Predict batch after batch, in order. A batch that fails yields its error instead of predictions and
        the stream goes on (bulk enrichment records the failure and continues). `columnar`: each result carries
        `decisions` (arrays) instead of `Prediction` objects, for bulk writers that need only the decisions.

        Sequential on purpose: encoding the next batch on a second thread or process while this one is fused
        is slower on few cores (the encoder holds the GIL much of its time; benchmarks/throughput.py).
        """
        for batch in batches:
            batch = list(batch)
            try:
                result = self._batch(batch, n_candidates, columnar)
            except Exception as exc:  # noqa: BLE001 (reported with its batch)
                yield BatchResult(batch, [], np.zeros((0, self.model.index_dim), np.float32), exc)
                continue
            yield result

    def _batch(self, batch: list[Post], n_candidates: int, columnar: bool) -> BatchResult:
        """One batch's result: decisions as arrays (`columnar`), or predictions carrying the clusters assigned."""
        ev, q = gather_evidence(self.model, batch, self.model.features(batch))
        vectors = np.asarray(q, dtype=np.float32)
        if columnar:
            return BatchResult(batch, [], vectors, None, self.decide(ev, n_candidates))
        preds = self.from_evidence(batch, ev, n_candidates=n_candidates)
        labels, shares = ev.assigned_clusters
        for pred, label, share in zip(preds, labels, shares):
            if label >= 0:
                pred.cluster, pred.cluster_contributions = str(label), share
        return BatchResult(batch, preds, vectors, None)
