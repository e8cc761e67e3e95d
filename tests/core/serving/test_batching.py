from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from verticals.core.errors import ModelUnavailable, Overloaded, Timeout
from verticals.core.serving.batching import BatchHandlerError, MicroBatcher, describe

SETTINGS = dict(max_batch_size=8, max_wait_ms=20.0, max_queue=64, timeout_s=2.0, name="t")


class Recorder:
    """A handler that doubles numbers and records each batch; can be held on a gate."""

    def __init__(self, gate: threading.Event | None = None, delay_s: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate
        self.delay_s = delay_s
        self.entered = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(5)
        if self.delay_s:
            time.sleep(self.delay_s)
        return [2 * i for i in items]


def make(handler, **overrides) -> MicroBatcher:
    return MicroBatcher(handler, **{**SETTINGS, **overrides})


@pytest.mark.parametrize(
    ("overrides", "argument"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_batch_size": 2.5}, "max_batch_size"),
        ({"max_wait_ms": -1.0}, "max_wait_ms"),
        ({"max_wait_ms": float("nan")}, "max_wait_ms"),
        ({"max_queue": 4}, "max_queue"),
        ({"timeout_s": 0.0}, "timeout_s"),
        ({"timeout_s": 0.01, "max_wait_ms": 50.0}, "timeout_s"),
        ({"name": " "}, "name"),
    ],
)
def test_settings_are_validated_together(overrides, argument):
    with pytest.raises(ValueError, match=argument):
        make(Recorder(), **overrides)


def test_handler_must_be_callable():
    with pytest.raises(ValueError, match="handler"):
        MicroBatcher(None, **SETTINGS)  # type: ignore[arg-type]


def test_concurrent_submissions_are_batched_and_answered_in_order():
    handler = Recorder(delay_s=0.01)
    with make(handler, max_batch_size=8, max_wait_ms=30.0) as batcher:
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(batcher.submit_sync, range(64)))
    assert results == [2 * i for i in range(64)]
    assert sum(len(b) for b in handler.batches) == 64
    assert max(len(b) for b in handler.batches) == 8  # never more than max_batch_size
    assert len(handler.batches) < 64 / 2  # really batched


def test_lone_item_waits_at_most_max_wait():
    handler = Recorder()
    with make(handler, max_wait_ms=30.0) as batcher:
        started = time.monotonic()
        assert batcher.submit_sync(21) == 42
        elapsed = time.monotonic() - started
    assert elapsed < 0.5
    assert handler.batches == [[21]]


def test_full_queue_is_refused_with_retry_after():
    gate = threading.Event()
    handler = Recorder(gate=gate)
    batcher = make(handler, max_batch_size=1, max_queue=2, max_wait_ms=0.0).start()
    pool = ThreadPoolExecutor(4)
    try:
        first = pool.submit(batcher.submit_sync, 1)
        assert handler.entered.wait(2)  # item 1 is in the handler, held on the gate
        queued = [pool.submit(batcher.submit_sync, i) for i in (2, 3)]
        deadline = time.monotonic() + 2
        while batcher.queue_depth < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        with pytest.raises(Overloaded) as info:
            batcher.submit_sync(4)
        assert info.value.status_code == 503
        assert int(info.value.headers["Retry-After"]) >= 1
        gate.set()
        assert first.result(2) == 2
        assert [f.result(2) for f in queued] == [4, 6]
    finally:
        gate.set()
        batcher.close()
        pool.shutdown()


def test_item_not_served_in_time_raises_timeout_and_is_skipped():
    gate = threading.Event()
    handler = Recorder(gate=gate)
    batcher = make(handler, max_batch_size=1, max_wait_ms=0.0, timeout_s=0.2).start()
    pool = ThreadPoolExecutor(2)
    try:
        blocker = pool.submit(batcher.submit_sync, 1)
        assert handler.entered.wait(2)
        with pytest.raises(Timeout) as info:
            batcher.submit_sync(2)  # queued behind the held batch
        assert info.value.status_code == 504
        with pytest.raises(Timeout):
            blocker.result(2)  # the held item itself ran out of time too
        gate.set()
        assert batcher.submit_sync(3) == 6
        assert [2] not in handler.batches  # the timed-out item never reached the handler
    finally:
        gate.set()
        batcher.close()
        pool.shutdown()


def test_handler_error_fails_only_its_batch():
    def handler(items: list[int]) -> list[int]:
        if -1 in items:
            raise RuntimeError("bad item in batch")
        return [i + 1 for i in items]

    with make(handler, max_batch_size=1, max_wait_ms=0.0) as batcher:
        with pytest.raises(RuntimeError, match="bad item"):
            batcher.submit_sync(-1)
        assert batcher.submit_sync(1) == 2  # the worker survived


def test_wrong_result_count_fails_each_item():
    with make(lambda items: items[:-1], max_wait_ms=50.0) as batcher:
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(batcher.submit_sync, i) for i in range(3)]
            errors = [f.exception(3) for f in futures]
    assert all(isinstance(e, BatchHandlerError) for e in errors)
    assert errors[0].status_code == 500


def test_non_list_result_fails_each_item():
    with make(lambda items: None) as batcher:
        with pytest.raises(BatchHandlerError, match="not a list"):
            batcher.submit_sync(1)


def test_async_submissions_are_batched():
    handler = Recorder(delay_s=0.01)

    async def main() -> list[int]:
        async with make(handler, max_wait_ms=30.0) as batcher:
            return await asyncio.gather(*(batcher.submit(i) for i in range(40)))

    assert asyncio.run(main()) == [2 * i for i in range(40)]
    assert len(handler.batches) < 20


def test_async_callers_of_a_batch_are_woken_with_one_cross_thread_call():
    gate = threading.Event()
    handler = Recorder(gate=gate)
    wakeups: list[int] = []

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counting(callback, *args, **kwargs):
            if threading.current_thread().name.startswith("microbatcher-"):
                wakeups.append(len(args[0]))  # the outcomes it carries
            return original(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        batcher = make(handler, max_batch_size=8, max_wait_ms=200.0).start()
        try:
            calls = [asyncio.create_task(batcher.submit(i)) for i in range(8)]
            await asyncio.to_thread(handler.entered.wait, 2)
            gate.set()
            return await asyncio.gather(*calls)
        finally:
            gate.set()
            await asyncio.to_thread(batcher.close)

    assert asyncio.run(main()) == [2 * i for i in range(8)]
    assert handler.batches == [list(range(8))]
    assert wakeups == [8]  # one wakeup carrying the 8 outcomes, not 8 wakeups


def test_handler_error_reaches_async_callers():
    def broken(items: list[int]) -> list[int]:
        raise ModelUnavailable("model went away")

    async def main() -> None:
        async with make(broken) as batcher:
            results = await asyncio.gather(
                *(batcher.submit(i) for i in range(3)), return_exceptions=True
            )
        assert all(isinstance(r, ModelUnavailable) for r in results)

    asyncio.run(main())


def test_cancelled_async_client_is_skipped():
    gate = threading.Event()
    handler = Recorder(gate=gate)

    async def main() -> None:
        batcher = make(handler, max_batch_size=1, max_wait_ms=0.0).start()
        try:
            first = asyncio.create_task(batcher.submit(1))
            await asyncio.to_thread(handler.entered.wait, 2)
            gone = asyncio.create_task(batcher.submit(2))  # a client that will disconnect
            await asyncio.sleep(0.02)
            gone.cancel()
            await asyncio.sleep(0.02)
            gate.set()
            assert await first == 2
            assert await batcher.submit(3) == 6
            with pytest.raises(asyncio.CancelledError):
                await gone
        finally:
            gate.set()
            await asyncio.to_thread(batcher.close)

    asyncio.run(main())
    assert handler.batches == [[1], [3]]


def test_async_timeout():
    gate = threading.Event()
    handler = Recorder(gate=gate)

    async def main() -> None:
        batcher = make(handler, max_batch_size=1, max_wait_ms=0.0, timeout_s=0.2).start()
        try:
            with pytest.raises(Timeout):
                await batcher.submit(1)
        finally:
            gate.set()
            await asyncio.to_thread(batcher.close)

    asyncio.run(main())


def test_not_started_and_closed_batchers_refuse():
    batcher = make(Recorder())
    with pytest.raises(ModelUnavailable, match="not started"):
        batcher.submit_sync(1)
    batcher.start()
    batcher.close()
    with pytest.raises(ModelUnavailable, match="closed"):
        batcher.submit_sync(1)
    with pytest.raises(ModelUnavailable):
        batcher.start()


def test_close_drains_queued_items():
    gate = threading.Event()
    handler = Recorder(gate=gate)
    batcher = make(handler, max_batch_size=1, max_wait_ms=0.0).start()
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batcher.submit_sync, i) for i in range(4)]
        assert handler.entered.wait(2)
        time.sleep(0.05)
        closer = pool.submit(batcher.close)
        gate.set()
        closer.result(5)
        assert [f.result(2) for f in futures] == [0, 2, 4, 6]
    assert not batcher.running


def test_close_without_drain_fails_queued_items():
    gate = threading.Event()
    handler = Recorder(gate=gate)
    batcher = make(handler, max_batch_size=1, max_wait_ms=0.0).start()
    with ThreadPoolExecutor(4) as pool:
        held = pool.submit(batcher.submit_sync, 0)
        assert handler.entered.wait(2)
        queued = [pool.submit(batcher.submit_sync, i) for i in (1, 2)]
        while batcher.queue_depth < 2:
            time.sleep(0.005)
        closer = pool.submit(batcher.close, drain=False)
        time.sleep(0.05)
        gate.set()
        closer.result(5)
        assert held.result(2) == 0  # the batch in flight finishes
        for future in queued:
            assert isinstance(future.exception(2), ModelUnavailable)


def test_batch_size_histogram_is_labelled_by_name():
    from prometheus_client import REGISTRY

    name = "test-metrics-batcher"
    with make(Recorder(delay_s=0.01), name=name, max_wait_ms=30.0) as batcher:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(batcher.submit_sync, range(16)))
        info = describe(batcher)
    total = REGISTRY.get_sample_value("verticals_batch_size_sum", {"batcher": name})
    count = REGISTRY.get_sample_value("verticals_batch_size_count", {"batcher": name})
    assert total == 16
    assert 1 <= count < 16
    assert info["name"] == name and info["running"]
    calls = REGISTRY.get_sample_value("verticals_batch_handler_seconds_count", {"batcher": name})
    busy = REGISTRY.get_sample_value("verticals_batch_handler_seconds_sum", {"batcher": name})
    assert calls == count  # one handler call per batch
    assert busy >= 0.01 * count  # each call slept 10 ms


def test_two_workers_run_batches_side_by_side():
    lock, active, peak = threading.Lock(), [0], [0]

    def handler(items: list[int]) -> list[int]:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)  # long enough for the other worker to start a batch meanwhile
        with lock:
            active[0] -= 1
        return [2 * i for i in items]

    with make(handler, max_batch_size=2, max_wait_ms=1.0, workers=2) as batcher:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(batcher.submit_sync, range(8)))
    assert results == [2 * i for i in range(8)]
    assert peak[0] == 2


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        make(Recorder(), workers=0)


def test_batching_settings_are_checked_and_build_the_batcher():
    from pydantic import ValidationError
    from verticals.core.serving.batching import BatchingSettings

    with pytest.raises(ValidationError, match="max_queue must be >= max_batch_size"):
        BatchingSettings(max_batch_size=64, max_queue=8)
    with pytest.raises(ValidationError, match="timeout_s must exceed max_wait_ms"):
        BatchingSettings(max_wait_ms=50.0, timeout_s=0.01)
    settings = BatchingSettings(max_batch_size=4, max_wait_ms=1.0, max_queue=16, workers=2)
    batcher = MicroBatcher.from_settings(lambda items: items, settings, name="t/settings")
    assert (batcher.max_batch_size, batcher.max_queue, batcher.workers) == (4, 16, 2)

