"""Micro-batching: concurrent requests share one batched model call instead of queueing one by one.

While a batch runs, new requests wait in a queue; the next batch takes all of them (up to
`max_batch`). One request alone is served at once (after at most `max_wait_s`). Batching pays
because the encoders and FAISS cost far less per post in a batch (benchmarks/load.py), and the
model's predictions do not depend on which posts share a batch (tests/test_pipeline.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """`await batcher(item)` → `fn([..., item, ...])[i]`; `fn` runs in a worker thread, one batch at a time."""

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], max_batch: int = 32, max_wait_s: float = 0.001,
                 on_batch: Callable[[int], None] | None = None):
        self.fn, self.max_batch, self.max_wait_s, self.on_batch = fn, max_batch, max_wait_s, on_batch
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    async def __call__(self, item: T) -> R:
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass

    async def _next_batch(self) -> list[tuple[T, asyncio.Future]]:
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return [(item, future) for item, future in batch if not future.cancelled()]  # client gone: skip

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            if self.on_batch:
                self.on_batch(len(batch))
            try:
                results = await run_in_threadpool(self.fn, [item for item, _ in batch])
                outcomes = list(zip(batch, results, strict=True))
            except Exception:  # one bad item must not fail its neighbours: retry them one by one
                outcomes = []
                for pair in batch:
                    try:
                        outcomes.append((pair, (await run_in_threadpool(self.fn, [pair[0]]))[0]))
                    except Exception as exc:  # noqa: BLE001 - handed to the caller's await
                        outcomes.append((pair, exc))
            for (_, future), result in outcomes:
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
