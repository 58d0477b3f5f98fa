"""OpenSearch integration: installer for the ML Commons connector + ingest/search pipelines (path A),
bulk enrichment with the local model (path B), and personalised search queries."""

from tagatlas.plugin.bodies import SCHEMA_VERSION, Names, enrichment_fields, personal_query, post_document
from tagatlas.plugin.bulk import BulkEnricher, BulkReport, CheckpointError
from tagatlas.plugin.client import Connection, cluster_info
from tagatlas.plugin.compat import ClusterInfo, OpenSearchVersionError
from tagatlas.plugin.installer import Installer, InstallError, Manifest
from tagatlas.plugin.search import OpenSearchSearch

__all__ = ["SCHEMA_VERSION", "BulkEnricher", "BulkReport", "CheckpointError", "ClusterInfo", "Connection", "InstallError",
           "Installer", "Manifest", "Names", "OpenSearchSearch", "OpenSearchVersionError", "cluster_info", "enrichment_fields",
           "personal_query", "post_document"]
