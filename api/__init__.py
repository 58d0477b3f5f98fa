"""REST API and posting web page (FastAPI).

Not built yet: tracked in the REST API issue. The CLI (`tagatlas suggest`, `enrich`) is the interface today.
"""
