"""Locust users for benchmarks/load.py: write a post (suggestions while typing), search, and post it.

Texts come from the JSON list named by TAGATLAS_LOAD_TEXTS (real held-out posts chosen by load.py);
the API key from TAGATLAS_LOAD_KEY. Posts ingested here get ids `load-<n>-<uuid>` so they never collide.
"""

from __future__ import annotations

import json
import os
import random
import uuid

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

TEXTS: list[str] = json.loads(open(os.environ["TAGATLAS_LOAD_TEXTS"], encoding="utf-8").read())
KEY = os.environ["TAGATLAS_LOAD_KEY"]


class PostingUser(FastHttpUser):
    """Someone writing posts: mostly live suggestions, sometimes a search, now and then a published post.

    FastHttpUser (geventhttpclient): the load generator shares the server's cores, and python-requests' client
    costs several times more CPU per request."""

    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.rng = random.Random(uuid.uuid4().int)

    @task(6)
    def suggest_text(self) -> None:
        self.client.post("/v1/suggest", json={"text": self.rng.choice(TEXTS)}, name="POST /v1/suggest (text)")

    @task(3)
    def search(self) -> None:
        words = self.rng.choice(TEXTS).split()[:3] or ["snow"]
        self.client.get("/v1/search", params={"q": " ".join(words), "k": 10}, name="GET /v1/search")

    @task(int(os.environ.get("TAGATLAS_LOAD_INGEST_WEIGHT", 1)))  # 0: no ingest (load.py --no-ingest)
    def ingest(self) -> None:
        post = {"id": f"load-{uuid.uuid4()}", "user_id": f"load-user-{self.rng.randrange(50)}", "text": self.rng.choice(TEXTS)}
        self.client.post("/v1/posts", json=post, headers={"X-API-Key": KEY}, name="POST /v1/posts")
