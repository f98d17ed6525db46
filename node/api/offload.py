"""Heavy requests, off the node's event loop.

Statements over many blocks, analytics reports, CSV, Parquet and PDF renderings
never run on the loop that drives consensus and answers ``/v1/health``:

- reads of the store run in a small thread pool, on a LevelDB snapshot (consistent
  while blocks commit; LevelDB reads leave the interpreter lock to the loop);
- computing and rendering run in worker processes, from the plain data those
  reads gathered: a thread would compete with the loop for the interpreter lock,
  which a busy thread hands over only every few milliseconds. The workers are
  niced (``limits.OFFLOAD_NICE``) and, on Linux, of the idle scheduling class, so the
  node's own process comes first on a shared core; they end with the node.

One cap holds for all of it: ``limits.OFFLOAD_JOBS_MAX`` jobs admitted at once (reading,
computing, or waiting for a worker); past it a request is answered 503 at once, with
``Retry-After``. Results are shared by every request for the same thing and kept a
few blocks (``Memo``, at most ``size`` each), and answers go out in chunks (``stream``).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections import OrderedDict
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Final, Generic, ParamSpec, TypeVar

from aiohttp import web

from node.api.problems import ApiError
from node.app.sigverify import exit_with_parent
from node.protocol import limits

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
P = ParamSpec("P")


class Offload:
    """The node's pools for heavy requests and their one admission cap."""

    def __init__(
        self,
        processes: int | None = None,
        threads: int = limits.OFFLOAD_THREADS,
        jobs_max: int = limits.OFFLOAD_JOBS_MAX,
    ) -> None:
        self.jobs_max = jobs_max
        self.jobs = 0  # admitted now
        self.peak = 0  # the most admitted at once so far
        cores = len(os.sched_getaffinity(0))
        # One core stays the loop's: on it, the node's own process never waits for a worker.
        self._process_count = processes or min(limits.OFFLOAD_PROCESSES_MAX, max(1, cores - 1))
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="offload")
        self._processes: ProcessPoolExecutor | None = None  # started at the first job

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``jobs_max`` slots for a heavy request, or answer 503."""
        if self.jobs >= self.jobs_max:
            raise ApiError(
                503,
                f"this node is already answering {self.jobs_max} statements or exports: "
                "retry later",
                slug="busy",
                headers={"Retry-After": str(limits.OFFLOAD_RETRY_AFTER_S)},
            )
        self.jobs += 1
        self.peak = max(self.peak, self.jobs)
        try:
            yield
        finally:
            self.jobs -= 1

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn`` in a reading thread (reads of the store, a snapshot's)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, lambda: fn(*args, **kwargs))

    async def compute(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn`` (a module-level function of plain, picklable data) in a worker process."""
        if self._processes is None:
            self._processes = ProcessPoolExecutor(
                max_workers=self._process_count,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_started,
            )
        return await asyncio.wrap_future(self._processes.submit(fn, *args, **kwargs))

    def close(self) -> None:
        """Stop taking jobs. The reading threads are waited for (they read snapshots of
        the store, which closes next); the workers end after their job, or with the node."""
        self._threads.shutdown(wait=True, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=False, cancel_futures=True)


class Memo(Generic[K, V]):
    """Results of heavy jobs by key, each computed at a height of the store: a job asked
    for again while it runs is awaited, not run twice, and a result is served again
    until it is ``HTTP_RESULT_LAG_BLOCKS_MAX`` blocks behind (each says its height).
    Twenty clients asking for one statement cost one fold, not twenty."""

    def __init__(self, size: int, lag_blocks: int = limits.HTTP_RESULT_LAG_BLOCKS_MAX) -> None:
        self.size = size
        self.lag_blocks = lag_blocks
        self.runs = 0  # jobs started (the other requests shared them)
        self._done: OrderedDict[K, tuple[int, V]] = OrderedDict()
        self._running: dict[K, asyncio.Task[V]] = {}

    async def get(self, key: K, height: int, make: Callable[[], Awaitable[V]]) -> V:
        """``key``'s result computed at ``height`` or at most ``lag_blocks`` before."""
        done = self._done.get(key)
        if done is not None and done[0] >= height - self.lag_blocks:
            self._done.move_to_end(key)
            return done[1]
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._run(key, height, make))
            self._running[key] = task
        return await asyncio.shield(task)

    async def _run(self, key: K, height: int, make: Callable[[], Awaitable[V]]) -> V:
        self.runs += 1
        try:
            value = await make()
        finally:
            del self._running[key]
        self._done[key] = (height, value)
        self._done.move_to_end(key)
        while len(self._done) > self.size:
            self._done.popitem(last=False)
        return value


OFFLOAD_KEY: Final = web.AppKey("offload", Offload)


def _worker_started() -> None:
    """In a new worker: the lowest CPU priority there is (Linux: SCHED_IDLE, it runs only
    on a core nothing else wants), and an end with the node."""
    os.nice(limits.OFFLOAD_NICE)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    exit_with_parent()


def offload_of(request: web.Request) -> Offload:
    return request.app[OFFLOAD_KEY]


def install(app: web.Application) -> Offload:
    """Give ``app`` its pools; they close with it."""
    offload = Offload()
    app[OFFLOAD_KEY] = offload

    async def close(app: web.Application) -> None:
        offload.close()

    app.on_cleanup.append(close)
    return offload


async def stream(
    request: web.Request,
    chunks: bytes | AsyncIterable[bytes] | Iterable[bytes],
    content_type: str,
    headers: Mapping[str, str] | None = None,
    charset: str | None = None,
) -> web.StreamResponse:
    """Answer with ``chunks`` (whole bytes are cut in ``HTTP_STREAM_CHUNK_BYTES``),
    chunked, each written as it comes."""
    response = web.StreamResponse(headers=headers)
    response.content_type = content_type
    if charset is not None:
        response.charset = charset
    response.enable_chunked_encoding()
    await response.prepare(request)
    if isinstance(chunks, bytes):
        step = limits.HTTP_STREAM_CHUNK_BYTES
        for start in range(0, len(chunks), step):
            await response.write(chunks[start : start + step])
    elif isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            await response.write(chunk)
    else:
        for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response
