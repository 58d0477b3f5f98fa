"""Rate limiting and Prometheus request metrics as plain ASGI middleware."""

from __future__ import annotations

import threading
import time

from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram


class RateLimiter:
    """Token buckets per client (API key, else address): `rate` requests a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


class MeasureAndLimit:
    """Rate limiting and Prometheus request metrics as plain ASGI middleware (Starlette's BaseHTTPMiddleware
    streams every response through an extra task and memory channel: CPU the server needs under load)."""

    def __init__(self, app, limiter: RateLimiter, requests: Counter, latency: Histogram):
        self.app, self.limiter, self.requests, self.latency = app, limiter, requests, latency

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        key = next((value for name, value in scope["headers"] if name == b"x-api-key"), b"")
        client = key.decode("latin-1") or (scope["client"][0] if scope.get("client") else "unknown")
        wait = self.limiter.allow(client)
        if wait > 0:
            self.requests.labels("rate_limited", "429").inc()
            response = JSONResponse({"detail": f"rate limit exceeded; retry in {wait:.2f} s"}, status_code=429,
                                    headers={"Retry-After": str(max(1, round(wait)))})
            await response(scope, receive, send)
            return
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:  # the router records the matched route in the shared scope
            name = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(name, str(status)).inc()
            self.latency.labels(name).observe(time.perf_counter() - started)
