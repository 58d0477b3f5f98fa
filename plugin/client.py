"""Connecting to a cluster with opensearch-py, and the few calls every command needs."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, TransportError

from tagatlas.core.settings import load_settings
from tagatlas.plugin.compat import ClusterInfo


@dataclass(frozen=True)
class Connection:
    """Where the cluster is and how to authenticate (`auth` is `user:password`)."""

    url: str
    auth: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    timeout: float = 30.0

    @classmethod
    def from_env(cls, url: str | None = None, auth: str | None = None, **kw) -> "Connection":
        """Arguments first, then OPENSEARCH_URL / OPENSEARCH_AUTH."""
        settings = load_settings()
        url = url or settings.opensearch_url
        if not url:
            raise ValueError("'--url' is required (or set OPENSEARCH_URL), e.g. https://localhost:9200")
        return cls(url=url, auth=auth or settings.opensearch_auth or None, **kw)

    def client(self) -> OpenSearch:
        parsed = urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"'--url' {self.url!r} must look like http(s)://host:port")
        kwargs: dict = {"hosts": [self.url], "timeout": self.timeout, "max_retries": 3, "retry_on_timeout": True,
                        "use_ssl": parsed.scheme == "https", "verify_certs": self.verify_certs, "ssl_show_warn": self.verify_certs}
        if self.ca_certs:
            kwargs["ca_certs"] = self.ca_certs
        if self.auth:
            user, sep, password = self.auth.partition(":")
            if not sep:
                raise ValueError("'--auth' must be user:password")
            kwargs["http_auth"] = (user, password)
        return OpenSearch(**kwargs)


def call(client: OpenSearch, method: str, path: str, body=None, params: dict | None = None):
    """One REST call through the client's transport (retries on connection errors and timeouts)."""
    return client.transport.perform_request(method, path, body=body, params=params)


def get_or_none(client: OpenSearch, path: str, params: dict | None = None):
    """GET that answers None for 404 instead of raising."""
    try:
        return call(client, "GET", path, params=params)
    except NotFoundError:
        return None


def cluster_info(client: OpenSearch) -> ClusterInfo:
    root = call(client, "GET", "/")
    try:
        plugins = call(client, "GET", "/_cat/plugins", params={"format": "json"})
    except TransportError:
        plugins = []
    return ClusterInfo.from_responses(root, plugins or [])
