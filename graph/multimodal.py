"""Clustering posts whose modalities may be missing (seed 002): late fusion of per-modality graphs
weighted by each modality's clustering confidence, early fusion on concatenated vectors, and
incremental assignment of new posts without a rebuild.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from tagatlas.core import atomic_path, write_text_atomic
from tagatlas.encoders.impute import CrossModalImputer
from tagatlas.graph.cluster import cross_view_agreement, leiden, modularity, node_confidence
from tagatlas.graph.knn import knn_graph, neighbour_index
from tagatlas.index import use_blas_for


@dataclass
class Modality:
    """One view of the posts: a vector per post and whether the post has this view at all."""

    vectors: np.ndarray
    present: np.ndarray | None = None

    def mask(self) -> np.ndarray:
        present = np.ones(len(self.vectors), bool) if self.present is None else np.asarray(self.present, bool)
        return present & (np.abs(self.vectors).sum(axis=1) > 0)


@dataclass
class GraphClusterer:
    """fit(modalities) → labels_; assign(new modalities) → labels of new posts, against the fitted ones.

    fusion="late": Leiden on each modality's kNN graph, a per-node confidence (share of a node's edge
    weight inside its cluster) times a per-modality confidence (the modularity its clustering reaches);
    the graphs are merged with edge weights scaled by sqrt(c_i c_j) of both ends, then clustered again.
    A post missing a modality contributes nothing through it, so a partial view cannot dominate.
    fusion="early": one kNN graph on the concatenated, per-modality normalised vectors, a missing
    modality imputed from the present ones (`CrossModalImputer`: ridge maps learned on posts that have
    both) and scaled by the imputation's confidence, so a poor guess weighs little in the similarity.
    fusion="concat": the same with missing modalities left as zeros (the naive baseline).

    Late fusion's choices, kept as parameters because no one of them wins on every dataset (see
    benchmarks/graph_weighting.py): `edge_weights` puts each modality's graph on a common scale before the
    merge — "cosine" (raw similarities: a view whose neighbours are all near 1, like coordinates, weighs
    more), "mean" (divided by its mean edge), "random-walk" (each node's edges sum to 1, then symmetrised),
    "normalised" (D^-1/2 W D^-1/2); `confidence` scales a node's edges — "node*modularity" (as above),
    "node" (per-node share only), "none" (plain sum of the graphs) or "agreement" (each view weighted by the share
    of its kNN edges that another view also draws: a view whose neighbours no other view confirms, like photos
    that look alike across places, weighs little however tidy its own clusters are).
    """

    k: int = 10
    resolution: float = 1.0
    fusion: str = "late"
    seed: int = 0
    min_similarity: float = 0.0
    progress: bool = False
    edge_weights: str = "cosine"
    confidence: str = "node*modularity"
    names_: list[str] = field(default_factory=list)
    labels_: np.ndarray | None = None
    modality_confidence_: dict[str, float] = field(default_factory=dict)
    node_confidence_: dict[str, np.ndarray] = field(default_factory=dict)
    _vectors: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    imputer_: CrossModalImputer | None = field(default=None, repr=False)
    ids_: np.ndarray | None = None  # the caller's id of each fitted post (fit's `ids`), for neighbours found elsewhere
    _indices: dict = field(default_factory=dict, repr=False)
    _position: np.ndarray | None = field(default=None, repr=False)
    _fitted_concat: np.ndarray | None = field(default=None, repr=False)

    def fit(self, modalities: dict[str, Modality], ids: np.ndarray | None = None) -> "GraphClusterer":
        """Cluster the posts. `ids` (non-negative integers, one per post) name them for `assign`'s `neighbours`."""
        if self.fusion not in ("late", "early", "concat"):
            raise ValueError(f"fusion must be 'late', 'early' or 'concat', got {self.fusion!r}")
        if not modalities:
            raise ValueError("give at least one modality")
        if self.edge_weights not in EDGE_WEIGHTS:
            raise ValueError(f"edge_weights must be one of {sorted(EDGE_WEIGHTS)}, got {self.edge_weights!r}")
        if self.confidence not in CONFIDENCES:
            raise ValueError(f"confidence must be one of {list(CONFIDENCES)}, got {self.confidence!r}")
        sizes = {name: len(m.vectors) for name, m in modalities.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"modalities disagree on the number of posts: {sizes}")
        self.names_ = list(modalities)
        if ids is not None and len(ids) != next(iter(sizes.values())):
            raise ValueError(f"{len(ids)} ids for {next(iter(sizes.values()))} posts")
        self.ids_ = None if ids is None else np.asarray(ids, np.int64)
        self._indices, self._fitted_concat, self._position = {}, None, None
        self._vectors = {name: _normalise(m.vectors) for name, m in modalities.items()}
        self._masks = {name: m.mask() for name, m in modalities.items()}
        if self.fusion in ("early", "concat"):
            if self.fusion == "early":
                self.imputer_ = CrossModalImputer(min_pairs=10, seed=self.seed).fit(
                    {name: (self._vectors[name], self._masks[name]) for name in self.names_})
            graph = knn_graph(self._concatenated(self._vectors, self._masks), self._any_present(), self.k,
                              min_similarity=self.min_similarity, progress=self.progress, name=f"{self.fusion} fusion")
            self.labels_ = leiden(graph, self.resolution, self.seed)
            for name in self.names_:
                self.node_confidence_[name] = self._masks[name].astype(float)
                self.modality_confidence_[name] = 1.0
            return self
        fused = None
        graphs = {name: knn_graph(self._vectors[name], self._masks[name], self.k, min_similarity=self.min_similarity,
                                  progress=self.progress, name=name) for name in self.names_}
        for name, graph in graphs.items():
            if self.confidence == "agreement":
                conf = self._masks[name].astype(float)
                quality = cross_view_agreement(graph, [g for other, g in graphs.items() if other != name])
            else:
                labels = leiden(graph, self.resolution, self.seed) if self.confidence != "none" else None
                conf = node_confidence(graph, labels) if labels is not None else self._masks[name].astype(float)
                quality = max(modularity(graph, labels), 0.0) if self.confidence == "node*modularity" else 1.0
            self.node_confidence_[name] = conf
            self.modality_confidence_[name] = quality
            scale = sp.diags(np.sqrt(conf * quality))
            weighted = scale @ EDGE_WEIGHTS[self.edge_weights](graph) @ scale
            fused = weighted if fused is None else fused + weighted
        self.labels_ = leiden(fused, self.resolution, self.seed)
        return self

    def contributions(self) -> dict[str, np.ndarray]:
        """Per post and modality, the share of its fused confidence that modality provides (sums to 1 or 0)."""
        stack = np.stack([self.node_confidence_[n] * self.modality_confidence_[n] for n in self.names_])
        total = stack.sum(axis=0)
        shares = np.divide(stack, total, out=np.zeros_like(stack), where=total > 0)
        return {n: shares[i] for i, n in enumerate(self.names_)}

    def assign(self, modalities: dict[str, Modality], k: int | None = None) -> np.ndarray:
        """Clusters for new posts without refitting: a vote of their nearest fitted posts in each present
        modality, weighted by similarity and by the neighbours' confidence in that modality (-1: no evidence)."""
        return self.assign_with_contributions(modalities, k)[0]

    def assign_with_contributions(self, modalities: dict[str, Modality], k: int | None = None,
                                  neighbours: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
                                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`assign`, plus per post and modality the share of the winning cluster's vote that modality gave.

        `neighbours` (late fusion, fitted with `ids`): per modality, (similarities, ids) of each post's nearest
        posts, best first, already found by the caller in the same vector space (e.g. the recommender's own
        index search), so the vote skips its own search; ids not among the fitted posts are passed over."""
        if self.labels_ is None:
            raise RuntimeError("fit first")
        unknown = set(modalities) - set(self.names_)
        if unknown:
            raise ValueError(f"modalities not seen in fit: {sorted(unknown)}")
        k = k or self.k
        n = len(next(iter(modalities.values())).vectors)
        n_clusters = int(self.labels_.max()) + 1
        per_modality: dict[str, np.ndarray] = {}
        if self.fusion in ("early", "concat"):
            vectors = self._concatenated({name: _normalise(m.vectors) for name, m in modalities.items()},
                                         {name: m.mask() for name, m in modalities.items()})
            if self._fitted_concat is None:
                self._fitted_concat = self._concatenated(self._vectors, self._masks)
            fitted = self._fitted_concat
            votes = np.zeros((n, n_clusters))
            self._vote(votes, fitted, self._any_present(), vectors, np.abs(vectors).sum(axis=1) > 0, np.ones(len(fitted)), 1.0, k)
            per_modality["fused"] = votes
        else:
            for name, m in modalities.items():
                per_modality[name] = np.zeros((n, n_clusters))
                if neighbours and name in neighbours and self.ids_ is not None:
                    self._vote_found(per_modality[name], *neighbours[name], m.mask(), name, k)
                    continue
                self._vote(per_modality[name], self._vectors[name], self._masks[name], _normalise(m.vectors), m.mask(),
                           self.node_confidence_[name], self.modality_confidence_[name], k)
        votes = sum(per_modality.values())
        labels = votes.argmax(axis=1)
        best = votes[np.arange(n), labels]
        labels[best <= 0] = -1
        shares = {name: np.divide(v[np.arange(n), labels.clip(0)], best, out=np.zeros(n), where=best > 0)
                  for name, v in per_modality.items()}
        return labels, shares

    def _vote(self, votes, fitted, fitted_mask, queries, query_mask, node_conf, modality_conf, k):
        idx = np.flatnonzero(fitted_mask)
        rows = np.flatnonzero(query_mask)
        if not len(idx) or not len(rows) or modality_conf <= 0:
            return
        key = (id(fitted), fitted.shape)
        index = self._indices.get(key)
        if index is None:  # built once per modality, reused by every later assignment
            index = neighbour_index(np.ascontiguousarray(fitted[idx], np.float32))
            self._indices[key] = index
        use_blas_for(fitted.shape[1])
        sims, nbrs = index.search(np.ascontiguousarray(queries[rows], np.float32), min(k, len(idx)))
        ok = (nbrs >= 0) & (sims > self.min_similarity)
        members = idx[nbrs[ok]]
        query_rows = np.broadcast_to(rows[:, None], nbrs.shape)[ok]
        np.add.at(votes, (query_rows, self.labels_[members]), sims[ok] * np.sqrt(node_conf[members] * modality_conf))

    def _vote_found(self, votes, sims, ids, query_mask, name, k):
        """`_vote` from neighbours the caller found: the first `k` of them that are fitted posts with this view."""
        if self._position is None:  # caller id → fitted position (-1: not fitted)
            self._position = np.full(int(self.ids_.max()) + 1 if len(self.ids_) else 0, -1, np.int64)
            self._position[self.ids_] = np.arange(len(self.ids_))
        sims, ids = np.asarray(sims), np.asarray(ids, np.int64)
        inside = (ids >= 0) & (ids < len(self._position))
        pos = np.where(inside, self._position[np.where(inside, ids, 0)], -1)
        ok = (pos >= 0) & self._masks[name][pos.clip(0)] & (sims > self.min_similarity) & query_mask[:, None]
        ok &= np.cumsum(ok, axis=1) <= k
        members = pos[ok]
        rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)[ok]
        np.add.at(votes, (rows, self.labels_[members]),
                  sims[ok] * np.sqrt(self.node_confidence_[name][members] * self.modality_confidence_[name]))

    def _concatenated(self, vectors: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        """Per-modality unit vectors side by side; a missing one is zeros ("concat") or imputed ("early")."""
        n = len(next(iter(vectors.values())))
        views = {name: (vectors.get(name, np.zeros((n, self._vectors[name].shape[1]), np.float32)),
                        masks.get(name, np.zeros(n, bool))) for name in self.names_}
        if self.fusion == "early" and self.imputer_ is not None:
            filled = self.imputer_.transform(views)
            parts = [filled[name][0] * filled[name][1][:, None] for name in self.names_]
        else:
            parts = [v * m[:, None] for v, m in views.values()]
        return np.hstack(parts).astype(np.float32)

    def _any_present(self) -> np.ndarray:
        return np.any(np.stack([self._masks[n] for n in self.names_]), axis=0)

    # -- persistence (a folder: config as JSON, arrays as .npz) -----------------------------------
    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {name: getattr(self, name) for name in ("k", "resolution", "fusion", "seed", "min_similarity", "progress",
                                                         "edge_weights", "confidence")}
        config["names"] = self.names_
        config["modality_confidence"] = self.modality_confidence_
        arrays = {"labels": self.labels_}
        if self.ids_ is not None:
            arrays["ids"] = self.ids_
        for name in self.names_:
            arrays[f"vectors:{name}"] = self._vectors[name]
            arrays[f"mask:{name}"] = self._masks[name]
            arrays[f"confidence:{name}"] = self.node_confidence_[name]
        if self.imputer_ is not None:
            self.imputer_.save(folder / "imputer")
        elif (folder / "imputer").exists():  # left by an earlier save into this folder: not this graph's
            shutil.rmtree(folder / "imputer")
        with atomic_path(folder / "graph.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        write_text_atomic(folder / "graph.json", json.dumps(config, indent=1))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "GraphClusterer":
        folder = Path(folder)
        config = json.loads((folder / "graph.json").read_text())
        names, confidence = config.pop("names"), config.pop("modality_confidence")
        self = cls(**config)
        with np.load(folder / "graph.npz") as arrays:
            self.labels_ = arrays["labels"]
            self.ids_ = arrays["ids"] if "ids" in arrays.files else None
            self.names_ = names
            self.modality_confidence_ = confidence
            for name in names:
                self._vectors[name] = arrays[f"vectors:{name}"]
                self._masks[name] = arrays[f"mask:{name}"]
                self.node_confidence_[name] = arrays[f"confidence:{name}"]
            legacy = {tuple(k.split(":")[1:3]): (arrays[k], arrays[k[: -len("coef")] + "intercept"])
                      for k in arrays.files if k.startswith("impute:") and k.endswith(":coef")}
        if (folder / "imputer" / "imputer.json").is_file():
            self.imputer_ = CrossModalImputer.load(folder / "imputer")
        elif legacy:  # a graph saved before imputation carried confidences: its maps, fully trusted as then
            self.imputer_ = CrossModalImputer(min_pairs=10, seed=self.seed)
            self.imputer_.names_, self.imputer_.maps_ = list(names), legacy
            self.imputer_.confidence_ = {pair: 1.0 for pair in legacy}
        return self


def _degree_scaled(graph: sp.csr_matrix, power: float) -> np.ndarray:
    degree = np.asarray(graph.sum(axis=1)).ravel()
    return np.divide(1.0, degree ** power, out=np.zeros_like(degree, dtype=float), where=degree > 0)


def _random_walk(graph: sp.csr_matrix) -> sp.csr_matrix:
    """Each node's edges rescaled to sum to 1 (a transition matrix), then symmetrised by averaging."""
    walk = sp.diags(_degree_scaled(graph, 1.0)) @ graph
    return ((walk + walk.T) / 2).tocsr()


def _symmetric_normalised(graph: sp.csr_matrix) -> sp.csr_matrix:
    scale = sp.diags(_degree_scaled(graph, 0.5))
    return (scale @ graph @ scale).tocsr()


def _mean_scaled(graph: sp.csr_matrix) -> sp.csr_matrix:
    return graph / graph.data.mean() if graph.nnz else graph


EDGE_WEIGHTS = {"cosine": lambda graph: graph, "mean": _mean_scaled, "random-walk": _random_walk, "normalised": _symmetric_normalised}
CONFIDENCES = ("node*modularity", "node", "none", "agreement")


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
