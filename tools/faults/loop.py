"""A background asyncio loop in its own thread, for synchronous callers (tests, the CLI).

The proxies and the workload live on it; the caller's thread starts and stops
node processes and checks results. ``call`` runs a coroutine there and waits
for its result, bounded; ``spawn`` starts one and returns its future.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Final, TypeVar

T = TypeVar("T")

STOP_TIMEOUT_S: Final = 10.0


class LoopThread:
    """One event loop running in a daemon thread until ``stop``."""

    def __init__(self, name: str = "faults-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def spawn(self, coroutine: Coroutine[object, object, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Coroutine[object, object, T], timeout_s: float) -> T:
        """Run ``coroutine`` on the loop; its result, or TimeoutError after ``timeout_s``."""
        future = self.spawn(coroutine)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"not done within {timeout_s} s") from None

    def stop(self) -> None:
        """Cancel what still runs on the loop, stop it and close it."""
        if self.loop.is_closed():
            return
        if self.loop.is_running():
            self.call(_cancel_others(), STOP_TIMEOUT_S)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(STOP_TIMEOUT_S)
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


async def _cancel_others() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
