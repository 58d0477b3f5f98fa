"""Rate limiting and Prometheus request metrics as plain ASGI middleware."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram


class RateLimiter:
    """Token buckets per client address: `rate` a second, bursts up to `burst`. At most `max_clients` buckets are
    kept (least recently seen dropped first: a dropped bucket is a full one again), so memory stays bounded however
    many addresses call."""

    def __init__(self, rate: float, burst: float, max_clients: int = 10_000):
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, client: str, now: float) -> float:
        """The client's tokens at `now`; its bucket leaves the recency order until `_put` puts it back, newest."""
        tokens, last = self._buckets.pop(client, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def _put(self, client: str, tokens: float, now: float) -> None:
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def _take(self, client: str, now: float, cost: float) -> float:
        tokens = self._refilled(client, now)
        wait = 0.0 if tokens >= cost else (cost - tokens) / self.rate
        self._put(client, tokens - cost if wait == 0 else tokens, now)
        return wait

    def allow(self, client: str) -> float:
        """0 when the request may go ahead (a token is taken), else the seconds to wait."""
        with self._lock:
            return self._take(client, time.monotonic(), 1.0)

    def blocked(self, client: str) -> float:
        """Seconds until `client` has a token again (0: it has one now); takes nothing."""
        with self._lock:
            if client not in self._buckets:
                return 0.0
            tokens, last = self._buckets[client]
            tokens = min(self.burst, tokens + (time.monotonic() - last) * self.rate)
            return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def spend(self, client: str) -> None:
        """Take a token whatever is left (a failed authentication counts against its address)."""
        with self._lock:
            now = time.monotonic()
            self._put(client, self._refilled(client, now) - 1, now)


def _too_many(wait: float, why: str) -> JSONResponse:
    return JSONResponse({"detail": f"{why}; retry in {wait:.2f} s"}, status_code=429, headers={"Retry-After": str(max(1, round(wait)))})


class MeasureAndLimit:
    """Rate limiting and Prometheus request metrics as plain ASGI middleware (Starlette's BaseHTTPMiddleware
    streams every response through an extra task and memory channel: CPU the server needs under load)."""

    def __init__(self, app, limiter: RateLimiter, requests: Counter, latency: Histogram, auth_failures: RateLimiter | None = None):
        self.app, self.limiter, self.requests, self.latency = app, limiter, requests, latency
        self.auth_failures = auth_failures  # failed authentications per address: key guessing is limited

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # By address, never by the key presented: made-up keys would each get a fresh bucket.
        client = scope["client"][0] if scope.get("client") else "unknown"
        has_key = any(name == b"x-api-key" for name, _ in scope["headers"])
        wait = self.limiter.allow(client)
        why = "rate limit exceeded"
        if wait == 0 and has_key and self.auth_failures is not None:
            wait = self.auth_failures.blocked(client)
            why = "too many failed authentications from this address"
        if wait > 0:
            self.requests.labels("rate_limited", "429").inc()
            await _too_many(wait, why)(scope, receive, send)
            return
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if status == 401 and self.auth_failures is not None:
                self.auth_failures.spend(client)  # the router records the matched route in the shared scope
            route = scope.get("route")  # its path without converters ("/v1/posts/{post_id}", not "{post_id:path}")
            name = getattr(route, "path_format", None) or getattr(route, "path", "unmatched")
            self.requests.labels(name, str(status)).inc()
            self.latency.labels(name).observe(time.perf_counter() - started)
