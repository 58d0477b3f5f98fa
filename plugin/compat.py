"""Which OpenSearch versions TagAtlas supports, and a clear refusal on older clusters.

Versions come from the OpenSearch documentation: the `ml_inference` ingest processor appeared in 2.14
(docs.opensearch.org/2.14/ingest-pipelines/processors/ml-inference), the `ml_inference` search request
processor in 2.16, efficient k-NN filtering with the faiss engine in 2.9, connector retry settings
(`client_config.max_retry_times`) in 2.15 (ml-commons ConnectorClientConfig).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Version = tuple[int, int, int]

ML_INFERENCE_INGEST: Version = (2, 14, 0)
ML_INFERENCE_SEARCH: Version = (2, 16, 0)
KNN_FAISS_FILTER: Version = (2, 9, 0)
CONNECTOR_RETRIES: Version = (2, 15, 0)


class OpenSearchVersionError(RuntimeError):
    """The cluster is too old (or lacks a plugin) for what was asked."""


def parse_version(number: str) -> Version:
    """'2.17.1' or '3.0.0-alpha1' → (2, 17, 1); refuses anything that is not a version number."""
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", str(number).strip())
    if not match:
        raise OpenSearchVersionError(f"cannot read the cluster's version number {number!r}")
    return int(match[1]), int(match[2]), int(match[3] or 0)


def show(version: Version) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class ClusterInfo:
    """What `GET /` and `GET /_cat/plugins` say about a cluster."""

    version: Version
    distribution: str
    plugins: frozenset[str]

    @classmethod
    def from_responses(cls, root: dict, plugins: list[dict]) -> "ClusterInfo":
        v = root.get("version", {})
        distribution = v.get("distribution", "elasticsearch" if "number" in v else "unknown")
        return cls(parse_version(v.get("number", "")), distribution, frozenset(p.get("component", "") for p in plugins))

    def require(self, minimum: Version, feature: str, plugin: str | None = None) -> None:
        """Raise a message naming the feature, the version it needs and this cluster's version."""
        if self.distribution != "opensearch":
            raise OpenSearchVersionError(f"{feature} needs OpenSearch; this cluster reports distribution {self.distribution!r}")
        if self.version < minimum:
            raise OpenSearchVersionError(f"{feature} needs OpenSearch >= {show(minimum)}; this cluster runs {show(self.version)}. "
                                         f"Upgrade the cluster, or use `tagatlas opensearch install --no-ml` and "
                                         f"`tagatlas opensearch enrich` (bulk enrichment needs >= {show(KNN_FAISS_FILTER)})")
        if plugin and plugin not in self.plugins:
            raise OpenSearchVersionError(f"{feature} needs the {plugin} plugin, which this cluster does not list in _cat/plugins "
                                         f"(found: {', '.join(sorted(self.plugins)) or 'none'})")

    @property
    def search_pipeline_supported(self) -> bool:
        return self.version >= ML_INFERENCE_SEARCH

    @property
    def connector_retries_supported(self) -> bool:
        return self.version >= CONNECTOR_RETRIES
