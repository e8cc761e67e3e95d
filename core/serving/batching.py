"""Dynamic micro-batching: many concurrent single-item requests become one handler call.

One worker thread takes the first waiting item, then collects more until ``max_batch_size``
items are in hand or ``max_wait_ms`` has passed since that first item, and calls
``handler(items) -> results`` once (one result per item, same order). Callers wait on a future:

- ``submit_sync(item)`` from threads (blocks);
- ``await submit(item)`` from asyncio code (a cancelled awaiter, e.g. a client that disconnected,
  cancels its item: it is skipped if not yet taken, and its result is dropped otherwise).

The queue is bounded: when it is full, :class:`~verticals.core.errors.Overloaded` (503 with
Retry-After) is raised at once. An item not served within ``timeout_s`` raises
:class:`~verticals.core.errors.Timeout` (504). A handler exception fails only the items of that
batch; a handler returning the wrong number of results fails each item of the batch with
:class:`BatchHandlerError`.

Example::

    batcher = MicroBatcher(session_predict, max_batch_size=32, max_wait_ms=5, max_queue=256,
                           timeout_s=2.0, name="medical/pneumonia")
    batcher.start()
    result = await batcher.submit(image)        # or batcher.submit_sync(image)
    batcher.close()
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, model_validator
from verticals.core.errors import ModelUnavailable, Overloaded, Timeout, VerticalsError

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

_POLL_S = 0.05  # how often an idle worker checks whether it was closed


class BatchHandlerError(VerticalsError):
    """The batch handler broke its contract (e.g. returned the wrong number of results)."""

    status_code = 500
    code = "batch_handler_error"


@dataclass(eq=False)
class _Pending(Generic[T]):
    item: T
    deadline: float  # time.monotonic() after which nobody waits for the result any more
    enqueued: float
    future: Future = field(default_factory=Future)  # the item's state: pending/running/done
    # an asyncio caller's future, completed on its own loop (see MicroBatcher._settle)
    waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future] | None = None


def _deliver(outcomes: list[tuple[asyncio.Future, Any, BaseException | None]]) -> None:
    """On the event loop: complete the waiters whose callers still wait."""
    for waiter, result, error in outcomes:
        if waiter.done():  # cancelled: the caller timed out or disconnected
            continue
        if error is None:
            waiter.set_result(result)
        else:
            waiter.set_exception(error)


class _Metrics:
    """Prometheus instruments shared by every batcher, labelled by batcher name."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.batch_size = Histogram(
            "verticals_batch_size",
            "Items per handler call of a micro-batcher.",
            ["batcher"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.queue_wait = Histogram(
            "verticals_batch_queue_wait_seconds",
            "Time an item waited in a micro-batcher queue before its batch ran.",
            ["batcher"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.handler_seconds = Histogram(
            "verticals_batch_handler_seconds",
            "Time one handler call of a micro-batcher took (a whole batch).",
            ["batcher"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.rejected = Counter(
            "verticals_batch_rejected",
            "Items refused by a micro-batcher, by reason (overloaded, timeout, closed).",
            ["batcher", "reason"],
        )


@lru_cache(maxsize=1)
def _metrics() -> _Metrics:
    """Created on first use (not at import) and only once per process."""
    return _Metrics()


class BatchingSettings(BaseModel):
    """How a domain's micro-batcher batches. Every domain's settings carry one as ``batching``,
    set from the environment as ``VERTICALS_<DOMAIN>_BATCHING__MAX_BATCH_SIZE`` and so on."""

    max_batch_size: int = Field(32, ge=1, description="most items per handler call")
    max_wait_ms: float = Field(2.0, ge=0, description="longest wait of a batch's first item")
    max_queue: int = Field(256, ge=1, description="most items waiting; beyond: 503")
    timeout_s: float = Field(10.0, gt=0, description="submission to result; beyond: 504")
    workers: int = Field(1, ge=1, description="batches run side by side")

    @model_validator(mode="after")
    def _consistent(self) -> BatchingSettings:
        if self.max_queue < self.max_batch_size:
            raise ValueError("max_queue must be >= max_batch_size, else no full batch can form")
        if self.timeout_s * 1000.0 <= self.max_wait_ms:
            raise ValueError("timeout_s must exceed max_wait_ms")
        return self


class MicroBatcher(Generic[T, R]):
    """Collects single items into batches for ``handler``; see the module docstring.

    Args:
        handler: ``list[T] -> list[R]``, called on the worker thread, one result per item.
        max_batch_size: most items per handler call (>= 1).
        max_wait_ms: longest time the first item of a batch waits for company (>= 0).
        max_queue: most items waiting to be batched (>= max_batch_size); beyond → Overloaded.
        timeout_s: per-item limit from submission to result (> max_wait_ms); beyond → Timeout.
        name: label for logs and metrics, e.g. ``"medical/pneumonia"``.
        metrics: record Prometheus histograms (batch size, queue wait, handler time) labelled
            by ``name``.
        workers: worker threads; with 2 one batch forms while another runs (the handler must be
            thread-safe, as an ONNX Runtime session is).
    """

    def __init__(
        self,
        handler: Callable[[list[T]], list[R]],
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        timeout_s: float,
        name: str,
        metrics: bool = True,
        workers: int = 1,
    ) -> None:
        if not callable(handler):
            raise ValueError("handler must be callable: list[item] -> list[result]")
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int):
            raise ValueError(f"max_batch_size must be an int, got {max_batch_size!r}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if not math.isfinite(max_wait_ms) or max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be a finite number >= 0, got {max_wait_ms}")
        if isinstance(max_queue, bool) or not isinstance(max_queue, int):
            raise ValueError(f"max_queue must be an int, got {max_queue!r}")
        if max_queue < max_batch_size:
            raise ValueError(
                f"max_queue ({max_queue}) must be >= max_batch_size ({max_batch_size}), "
                "else a full batch can never form"
            )
        if not math.isfinite(timeout_s) or timeout_s <= 0:
            raise ValueError(f"timeout_s must be a finite number > 0, got {timeout_s}")
        if timeout_s * 1000.0 <= max_wait_ms:
            raise ValueError(
                f"timeout_s ({timeout_s} s) must exceed max_wait_ms ({max_wait_ms} ms), "
                "else every item times out while its batch is still forming"
            )
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name must be a non-empty string")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        self.handler = handler
        self.max_batch_size = max_batch_size
        self.max_wait_ms = float(max_wait_ms)
        self.max_queue = max_queue
        self.timeout_s = float(timeout_s)
        self.name = name
        self.metrics = metrics
        self.workers = workers
        self._queue: queue.Queue[_Pending[T]] = queue.Queue(maxsize=max_queue)
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._drain = True
        self._lock = threading.Lock()
        self._handler_s = 0.0  # moving average of one handler call, for Retry-After

    @classmethod
    def from_settings(
        cls, handler: Callable[[list[T]], list[R]], settings: BatchingSettings, *, name: str
    ) -> MicroBatcher[T, R]:
        return cls(
            handler,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            timeout_s=settings.timeout_s,
            workers=settings.workers,
            name=name,
        )

    # ---------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        alive = any(thread.is_alive() for thread in self._threads)
        return alive and not self._closed.is_set()

    def start(self) -> MicroBatcher[T, R]:
        """Start the worker thread (idempotent). Returns self."""
        with self._lock:
            if self._closed.is_set():
                raise ModelUnavailable(f"batcher {self.name!r} is closed and cannot restart")
            if not self._threads:
                self._threads = [
                    threading.Thread(
                        target=self._run, name=f"microbatcher-{self.name}-{i}", daemon=True
                    )
                    for i in range(self.workers)
                ]
                for thread in self._threads:
                    thread.start()
        return self

    def close(self, *, drain: bool = True, timeout_s: float | None = None) -> None:
        """Refuse new items and stop the worker.

        With ``drain`` the items already queued are still served; without it they fail with
        ModelUnavailable. Waits up to ``timeout_s`` (default: this batcher's ``timeout_s``) for
        the worker; anything still queued after that fails with ModelUnavailable.
        """
        with self._lock:
            self._drain = drain
            self._closed.set()
            threads = list(self._threads)
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._fail_queued(ModelUnavailable(f"batcher {self.name!r} is closed"))

    def __enter__(self) -> MicroBatcher[T, R]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MicroBatcher[T, R]:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    # ---------------------------------------------------------------- submission
    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def retry_after_s(self) -> int:
        """Seconds a refused client should wait: time to work off a full queue, at least 1."""
        batches = math.ceil(self.max_queue / self.max_batch_size)
        per_batch = self._handler_s + self.max_wait_ms / 1000.0
        return max(1, math.ceil(batches * per_batch))

    def _enqueue(
        self, item: T, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future] | None = None
    ) -> _Pending[T]:
        now = time.monotonic()
        pending = _Pending(item=item, deadline=now + self.timeout_s, enqueued=now, waiter=waiter)
        try:
            with self._lock:  # close() flips the flag under this lock: nothing slips in after
                if self._closed.is_set() or not self._threads:
                    self._reject("closed")
                    state = "closed" if self._closed.is_set() else "not started"
                    raise ModelUnavailable(f"batcher {self.name!r} is {state}")
                self._queue.put_nowait(pending)
        except queue.Full:
            self._reject("overloaded")
            raise Overloaded(
                f"{self.name}: request queue is full ({self.max_queue} waiting)",
                {"max_queue": self.max_queue},
                retry_after_s=self.retry_after_s(),
            ) from None
        return pending

    def _timeout(self, pending: _Pending[T]) -> Timeout:
        pending.future.cancel()  # skipped by the worker if not taken yet
        self._reject("timeout")
        return Timeout(
            f"{self.name}: not served within {self.timeout_s:g} s",
            {"timeout_s": self.timeout_s},
        )

    def submit_sync(self, item: T) -> R:
        """Queue ``item`` and block until its result. Raises Overloaded, Timeout, the handler's
        exception, or ModelUnavailable when the batcher is not running."""
        pending = self._enqueue(item)
        try:
            return pending.future.result(timeout=max(0.0, pending.deadline - time.monotonic()))
        except FutureTimeout:
            raise self._timeout(pending) from None
        except CancelledError:
            raise self._timeout(pending) from None

    async def submit(self, item: T) -> R:
        """Queue ``item`` and await its result without blocking the event loop.

        If the awaiting task is cancelled (client disconnect), the item is cancelled too.
        """
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        pending = self._enqueue(item, (loop, waiter))
        try:
            async with asyncio.timeout(max(0.0, pending.deadline - time.monotonic())):
                return await waiter
        except TimeoutError:
            raise self._timeout(pending) from None
        except asyncio.CancelledError:
            pending.future.cancel()
            raise

    # ---------------------------------------------------------------- worker
    def _reject(self, reason: str) -> None:
        if self.metrics:
            _metrics().rejected.labels(self.name, reason).inc()

    def _take(self, block_until: float | None) -> _Pending[T] | None:
        """Next live item; None when the wait ended (or, unblocked, when the queue is empty)."""
        while True:
            try:
                if block_until is None:
                    pending = self._queue.get(timeout=_POLL_S)
                else:
                    remaining = block_until - time.monotonic()
                    pending = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
            except queue.Empty:
                return None
            now = time.monotonic()
            if now >= pending.deadline:
                pending.future.cancel()  # its caller has given up (or is about to)
                continue
            if pending.future.set_running_or_notify_cancel():
                return pending
            # cancelled by its caller (timeout or disconnect): skip it

    def _collect(self) -> list[_Pending[T]]:
        first = self._take(None)
        if first is None:
            return []
        batch = [first]
        until = first.enqueued + self.max_wait_ms / 1000.0
        while len(batch) < self.max_batch_size:
            more = self._take(until)
            if more is None:
                break
            batch.append(more)
        return batch

    def _run(self) -> None:
        while True:
            if self._closed.is_set() and (not self._drain or self._queue.empty()):
                break
            batch = self._collect()
            if batch:
                self._serve(batch)
        self._fail_queued(ModelUnavailable(f"batcher {self.name!r} is closed"))

    def _serve(self, batch: list[_Pending[T]]) -> None:
        started = time.monotonic()
        if self.metrics:
            m = _metrics()
            m.batch_size.labels(self.name).observe(len(batch))
            for pending in batch:
                m.queue_wait.labels(self.name).observe(started - pending.enqueued)
        try:
            results = self.handler([p.item for p in batch])
            if not isinstance(results, (list, tuple)):
                raise BatchHandlerError(
                    f"{self.name}: handler returned {type(results).__name__}, not a list"
                )
            if len(results) != len(batch):
                raise BatchHandlerError(
                    f"{self.name}: handler returned {len(results)} results for {len(batch)} items",
                    {"items": len(batch), "results": len(results)},
                )
        except Exception as exc:  # fail this batch only; the worker keeps serving
            if not isinstance(exc, VerticalsError):
                log.exception("batch handler of %r failed on %d items", self.name, len(batch))
            self._settle([(pending, None, exc) for pending in batch])
            return
        finally:
            elapsed = time.monotonic() - started
            if self.metrics:
                _metrics().handler_seconds.labels(self.name).observe(elapsed)
            self._handler_s = (
                elapsed if self._handler_s == 0 else 0.8 * self._handler_s + 0.2 * elapsed
            )
        self._settle([(p, r, None) for p, r in zip(batch, results, strict=True)])

    @staticmethod
    def _settle(outcomes: list[tuple[_Pending[Any], Any, BaseException | None]]) -> None:
        """Complete items. asyncio callers are woken with ONE call per event loop per batch:
        a wakeup per item (``asyncio.wrap_future``) costs a self-pipe write each, and each write
        hands the GIL to the busy event loop and then waits to get it back."""
        deliveries: dict[asyncio.AbstractEventLoop, list] = {}
        for pending, result, error in outcomes:
            if error is None:
                pending.future.set_result(result)
            else:
                pending.future.set_exception(error)
            if pending.waiter is not None:
                loop, waiter = pending.waiter
                deliveries.setdefault(loop, []).append((waiter, result, error))
        for loop, items in deliveries.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

    def _fail_queued(self, error: Exception) -> None:
        failed: list[tuple[_Pending[Any], Any, BaseException | None]] = []
        while True:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending.future.set_running_or_notify_cancel():
                failed.append((pending, None, error))
        self._settle(failed)


def describe(batcher: MicroBatcher[Any, Any]) -> dict[str, Any]:
    """Settings and state, for health endpoints and logs."""
    return {
        "name": batcher.name,
        "max_batch_size": batcher.max_batch_size,
        "max_wait_ms": batcher.max_wait_ms,
        "max_queue": batcher.max_queue,
        "timeout_s": batcher.timeout_s,
        "queue_depth": batcher.queue_depth,
        "running": batcher.running,
    }
