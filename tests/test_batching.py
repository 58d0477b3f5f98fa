"""MicroBatcher: concurrent calls share batches, each caller gets its own result, one bad item fails alone."""

import asyncio
import threading

from tagatlas.api.batching import MicroBatcher


def test_concurrent_calls_are_batched_and_results_map_back():
    sizes = []
    gate = threading.Event()

    def square(items):
        gate.wait(5)  # hold the first batch so the others queue up behind it
        return [x * x for x in items]

    async def main():
        batcher = MicroBatcher(square, max_batch=8, on_batch=sizes.append)
        first = asyncio.ensure_future(batcher(-1))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher(i)) for i in range(20)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert results == [1] + [i * i for i in range(20)]
    assert sizes[0] == 1 and max(sizes) == 8 and sum(sizes) == 21  # 20 queued calls went in batches of <= 8
    assert len(sizes) <= 5


def test_a_failing_item_fails_only_its_own_caller():
    def invert(items):
        return [1 / x for x in items]

    async def main():
        batcher = MicroBatcher(invert, max_batch=8, max_wait_s=0.05)
        results = await asyncio.gather(*(batcher(x) for x in [1, 2, 0, 4]), return_exceptions=True)
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert results[0] == 1 and results[1] == 0.5 and results[3] == 0.25
    assert isinstance(results[2], ZeroDivisionError)


def test_wrong_result_count_is_an_error_not_a_mixup():
    async def main():
        batcher = MicroBatcher(lambda items: items[:1], max_batch=4, max_wait_s=0.05)
        results = await asyncio.gather(*(batcher(x) for x in range(3)), return_exceptions=True)
        await batcher.close()
        return results

    results = asyncio.run(main())
    # the batch of 3 returned 1 result: retried one by one, each caller gets its own item back
    assert results == [0, 1, 2]


def test_batcher_survives_close_and_restarts():
    async def main():
        batcher = MicroBatcher(lambda items: [x + 1 for x in items])
        a = await batcher(1)
        await batcher.close()
        b = await batcher(2)  # a closed batcher starts a new worker on the next call
        await batcher.close()
        return a, b

    assert asyncio.run(main()) == (2, 3)
