"""OpenSearch integration (ML Commons connector + ingest pipeline, bulk enrichment, personalised search).

Not built yet: tracked in the OpenSearch plugin issue.
"""
