"""`tagatlas opensearch …`: install / uninstall / status (path A), enrich (path B), search."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tagatlas.cli_common import CacheOption, CachePathOption, guard

opensearch = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Plug TagAtlas into an OpenSearch cluster (see docs/opensearch.md).")

Url = Annotated[Optional[str], typer.Option("--url", help="cluster URL, e.g. https://localhost:9200 (default: $OPENSEARCH_URL)")]
Auth = Annotated[Optional[str], typer.Option("--auth", help="user:password (default: $OPENSEARCH_AUTH)")]
CaCerts = Annotated[Optional[Path], typer.Option("--ca-certs", help="CA bundle for https clusters")]
Insecure = Annotated[bool, typer.Option("--insecure", help="do not verify TLS certificates (test clusters only)")]
Index = Annotated[str, typer.Option("--index", help="the posts index")]


def _client(url, auth, ca_certs, insecure):
    from tagatlas.plugin import Connection

    return Connection.from_env(url, auth, ca_certs=str(ca_certs) if ca_certs else None, verify_certs=not insecure).client()


def _cluster_errors(exc: BaseException) -> str | None:
    """One line for what the cluster or the plugin's own checks refused (other user errors: `guard`)."""
    from opensearchpy.exceptions import ConnectionError as OSConnectionError, TransportError

    from tagatlas.plugin import CheckpointError, InstallError, OpenSearchVersionError

    if isinstance(exc, OSConnectionError):
        return f"cannot reach the cluster: {exc.info if getattr(exc, 'info', None) else exc}"
    if isinstance(exc, TransportError):
        return f"the cluster answered {exc.status_code}: {json.dumps(exc.info)[:800] if exc.info else exc.error}"
    if isinstance(exc, (CheckpointError, InstallError, OpenSearchVersionError)):
        return str(exc)
    return None


def _guard(fn):
    return guard(fn, _cluster_errors)


def _model_dim(model: Path) -> int:
    from tagatlas.recommender import TagAtlas

    return TagAtlas.load(model).posts_.index.dim


@opensearch.command()
def install(
    model: Annotated[Path, typer.Option(help="model folder (gives the embedding dimension)")],
    url: Url = None, auth: Auth = None, ca_certs: CaCerts = None, insecure: Insecure = False, index: Index = "posts",
    api_url: Annotated[Optional[str], typer.Option(help="TagAtlas REST API as the OpenSearch nodes reach it, e.g. http://tagatlas:8000")] = None,
    api_key: Annotated[Optional[str], typer.Option(help="an API key of that service (stored in the connector's credential)")] = None,
    ml: Annotated[bool, typer.Option("--ml/--no-ml", help="--no-ml: only the index and mapping (for `opensearch enrich`)")] = True,
    private_endpoint: Annotated[bool, typer.Option(help="allow a private/loopback --api-url (plugins.ml_commons.connector.private_ip_enabled)")] = False,
    ml_on_data_nodes: Annotated[bool, typer.Option(help="let ML tasks run on data nodes (clusters without ML nodes)")] = False,
    shards: int = 1, replicas: int = 1,
):
    """Create (idempotently, versioned) the mapping, connector, model, ingest and search pipelines."""
    from tagatlas.plugin import Installer

    def run():
        inst = Installer(_client(url, auth, ca_certs, insecure), index, _model_dim(model), api_url=api_url, api_key=api_key, ml=ml,
                         private_endpoint=private_endpoint, ml_on_data_nodes=ml_on_data_nodes, shards=shards, replicas=replicas,
                         say=lambda line: typer.echo(line, err=True))
        from dataclasses import asdict

        typer.echo(json.dumps(asdict(inst.install())))
    _guard(run)


@opensearch.command()
def uninstall(url: Url = None, auth: Auth = None, ca_certs: CaCerts = None, insecure: Insecure = False, index: Index = "posts",
              delete_index: Annotated[bool, typer.Option(help="also delete the posts index if install created it (its documents go too)")] = False):
    """Remove exactly what install created for this index, and revert the cluster settings it changed."""
    from tagatlas.plugin import Installer

    def run():
        inst = Installer(_client(url, auth, ca_certs, insecure), index, 1, ml=False, say=lambda line: typer.echo(line, err=True))
        m = inst.uninstall(delete_index=delete_index)
        typer.echo(json.dumps({"uninstalled": m is not None, "index": index}))
    _guard(run)


@opensearch.command()
def status(url: Url = None, auth: Auth = None, ca_certs: CaCerts = None, insecure: Insecure = False, index: Index = "posts"):
    """What install recorded for this index, and whether each resource is still there."""
    from tagatlas.plugin import Installer

    def run():
        typer.echo(json.dumps(Installer(_client(url, auth, ca_certs, insecure), index, 1, ml=False).status(), indent=1))
    _guard(run)


@opensearch.command()
def enrich(
    model: Annotated[Path, typer.Option(help="model folder")],
    url: Url = None, auth: Auth = None, ca_certs: CaCerts = None, insecure: Insecure = False, index: Index = "posts",
    input_file: Annotated[Optional[Path], typer.Option("--in", help="posts.jsonl(.gz) to enrich")] = None,
    source_index: Annotated[Optional[str], typer.Option("--source-index", help="enrich the documents of this index instead")] = None,
    only_failed: Annotated[bool, typer.Option(help="with --source-index: only documents marked tagatlas.status=failed")] = False,
    checkpoint: Annotated[Optional[Path], typer.Option(help="resume state (default: .tagatlas-enrich-<index>.json)")] = None,
    failures: Annotated[Optional[Path], typer.Option(help="failure report, JSON lines (default: next to the checkpoint)")] = None,
    batch_size: int = 256, max_retries: int = 5, skip_invalid: bool = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    cache: CacheOption = True, cache_path: CachePathOption = None,
):
    """Enrich posts with the local model and bulk-write them (resumable; failures reported, never dropped)."""
    from dataclasses import asdict

    from tagatlas.plugin import BulkEnricher
    from tagatlas.recommender import TagAtlas

    def run():
        if (input_file is None) == (source_index is None):
            raise ValueError("give exactly one of '--in' and '--source-index'")
        if only_failed and source_index is None:
            raise ValueError("'--only-failed' goes with '--source-index'")
        tagatlas = TagAtlas.load(model)
        tagatlas.warm_up()  # before the cache opens: the warm-up post is not one of the user's posts
        if cache:
            tagatlas.encoder.use_cache(cache_path)
        enricher = BulkEnricher(tagatlas, _client(url, auth, ca_certs, insecure), index,
                                checkpoint=checkpoint or Path(f".tagatlas-enrich-{index}.json"), failures=failures,
                                batch_size=batch_size, max_retries=max_retries, progress=progress)
        if input_file is not None:
            report = enricher.run_file(input_file, skip_invalid=skip_invalid)
        else:
            report = enricher.run_index(source_index, query={"term": {"tagatlas.status": "failed"}} if only_failed else None)
        typer.echo(json.dumps(asdict(report)))
        if report.failed:
            typer.echo(f"{report.failed} documents failed; they are in {report.failures_file} (re-run with --in that file)", err=True)
            raise typer.Exit(1)
    _guard(run)


@opensearch.command()
def search(
    query: Annotated[str, typer.Argument(help="search text")],
    model: Annotated[Path, typer.Option(help="model folder (embeds the query)")],
    url: Url = None, auth: Auth = None, ca_certs: CaCerts = None, insecure: Insecure = False, index: Index = "posts",
    user: Annotated[Optional[str], typer.Option(help="personalise with this user's documents in the index")] = None,
    k: int = 10,
    show_query: Annotated[bool, typer.Option(help="print the query body instead of running it")] = False,
):
    """Personalised search: k-NN on the TagAtlas embedding, boosted by the user's tags, clusters and home place."""
    from tagatlas.data import Post
    from tagatlas.plugin import OpenSearchSearch
    from tagatlas.recommender import TagAtlas

    def run():
        if not 1 <= k <= 1000:
            raise ValueError("'--k' must be between 1 and 1000")
        m = TagAtlas.load(model)
        searcher = OpenSearchSearch(_client(url, auth, ca_certs, insecure), index, m)
        if show_query:
            vector = m.embed([Post(id="_query", text=query)])[0]
            profile = searcher.profile(user) if user else None
            typer.echo(json.dumps(searcher.query(vector, profile, k)))
            return
        typer.echo(searcher.search(query, user_id=user, k=k).model_dump_json(indent=1))
    _guard(run)
