"""Community detection (Leiden, via python-igraph + leidenalg) and the confidence of a clustering."""

from __future__ import annotations

import igraph as ig
import leidenalg
import numpy as np
import scipy.sparse as sp


def leiden(graph: sp.spmatrix, resolution: float = 1.0, seed: int = 0, n_iterations: int = 5) -> np.ndarray:
    """Cluster labels (0..c-1) by Leiden on a weighted undirected graph; isolated nodes are singletons.

    RBConfiguration (modularity with a resolution) — deterministic for a fixed seed.
    """
    graph = sp.csr_matrix(graph)
    n = graph.shape[0]
    linked = np.flatnonzero(np.diff((graph + graph.T).tocsr().indptr) > 0)  # isolated nodes stay out of Leiden
    labels = np.arange(n) + n  # singletons, renumbered below
    if len(linked):
        sub = sp.triu(graph[linked][:, linked], k=1).tocoo()
        net = ig.Graph(n=len(linked), edges=np.column_stack([sub.row, sub.col]).tolist(), directed=False)
        net.es["weight"] = sub.data.astype(float).tolist()
        part = leidenalg.find_partition(net, leidenalg.RBConfigurationVertexPartition, weights="weight",
                                        resolution_parameter=resolution, seed=seed, n_iterations=n_iterations)
        labels[linked] = np.asarray(part.membership)
    return relabel(labels)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..c-1 by first appearance (so equal partitions get equal arrays)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse]


def node_confidence(graph: sp.spmatrix, labels: np.ndarray) -> np.ndarray:
    """Per node: the share of its edge weight that stays inside its own cluster (0 for a node with no edges).

    A node whose neighbours agree with its cluster is reliably placed in this modality's view.
    """
    g = sp.csr_matrix(graph)
    coo = g.tocoo()
    same = labels[coo.row] == labels[coo.col]
    inside = np.bincount(coo.row[same], weights=coo.data[same], minlength=g.shape[0])
    total = np.asarray(g.sum(axis=1)).ravel()
    return np.divide(inside, total, out=np.zeros(g.shape[0]), where=total > 0)


def modularity(graph: sp.spmatrix, labels: np.ndarray) -> float:
    """Newman modularity of a partition of a weighted undirected graph (0 for an empty graph)."""
    g = sp.csr_matrix(graph)
    m2 = g.sum()
    if m2 <= 0:
        return 0.0
    coo = g.tocoo()
    inside = coo.data[labels[coo.row] == labels[coo.col]].sum()
    degree = np.asarray(g.sum(axis=1)).ravel()
    per_cluster = np.bincount(labels, weights=degree)
    return float(inside / m2 - (per_cluster ** 2).sum() / m2 ** 2)


def cross_view_agreement(graph: sp.spmatrix, others: list[sp.spmatrix]) -> float:
    """Share of a node's edges in this view that some other view also draws, averaged over the nodes with edges
    in both (1 with no other view; 0 when no node has both). Confirmation across views, not self-consistency."""
    if not others:
        return 1.0
    edges = (sp.csr_matrix(graph) > 0).astype(np.float32)
    union = (sum((sp.csr_matrix(o) > 0).astype(np.float32) for o in others) > 0).astype(np.float32).tocsr()
    shared = np.asarray(edges.multiply(union).sum(axis=1)).ravel()
    degree = np.asarray(edges.sum(axis=1)).ravel()
    rows = (degree > 0) & (np.diff(union.indptr) > 0)
    return float((shared[rows] / degree[rows]).mean()) if rows.any() else 0.0
