"""The pool of heavy requests (``node.api.offload``): its one cap, and 503 past it."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import pytest

from node.api.offload import Memo, Offload
from node.api.problems import ApiError
from node.protocol import limits


def test_the_cap_holds_and_refusals_say_when_to_retry() -> None:
    offload = Offload(processes=1, threads=2, jobs_max=3)
    release = threading.Event()
    lock = threading.Lock()
    running = [0, 0]  # now, most at once

    def blocking() -> int:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1
        return 7

    async def one() -> int | ApiError:
        try:
            async with offload.slot():
                return await offload.read(blocking)
        except ApiError as refused:
            return refused

    async def scenario() -> list[int | ApiError]:
        tasks = [asyncio.create_task(one()) for _ in range(8)]
        await asyncio.sleep(0.2)
        assert offload.jobs == 3
        release.set()
        return await asyncio.gather(*tasks)

    try:
        results = asyncio.run(scenario())
    finally:
        offload.close()
    done = [r for r in results if r == 7]
    refused = [r for r in results if isinstance(r, ApiError)]
    assert len(done) == 3 and len(refused) == 5
    assert offload.peak == 3 and offload.jobs == 0
    assert running[1] == 2  # two reading threads, the third admitted job waited for one
    for error in refused:
        response = error.response()
        assert response.status == 503
        assert response.content_type == "application/problem+json"
        assert response.headers["Retry-After"] == str(limits.OFFLOAD_RETRY_AFTER_S)
        assert response.text is not None
        assert json.loads(response.text)["type"].endswith("/busy")


def _square(x: int) -> int:
    return x * x


def test_computing_runs_in_a_niced_worker_process() -> None:
    offload = Offload(processes=1, threads=1, jobs_max=1)

    async def scenario() -> tuple[int, int, int]:
        async with offload.slot():
            pid = await offload.compute(os.getpid)
            niceness = await offload.compute(os.nice, 0)
            return pid, niceness, await offload.compute(_square, 12)

    try:
        pid, niceness, squared = asyncio.run(scenario())
    finally:
        offload.close()
    assert pid != os.getpid() and squared == 144
    assert niceness >= os.nice(0) + limits.OFFLOAD_NICE or niceness == 19


def test_an_error_in_a_job_frees_its_slot() -> None:
    offload = Offload(processes=1, threads=1, jobs_max=1)

    def fail() -> None:
        raise RuntimeError("broken")

    async def scenario() -> None:
        with pytest.raises(RuntimeError):
            async with offload.slot():
                await offload.read(fail)
        async with offload.slot():
            assert await offload.read(lambda: 3) == 3

    try:
        asyncio.run(scenario())
    finally:
        offload.close()
    assert offload.jobs == 0


def test_a_memo_runs_a_job_once_for_all_who_ask_and_again_when_too_old() -> None:
    memo: Memo[str, int] = Memo(size=2, lag_blocks=3)
    started = 0

    async def job() -> int:
        nonlocal started
        started += 1
        await asyncio.sleep(0.05)
        return started

    async def scenario() -> list[int]:
        shared = await asyncio.gather(*(memo.get("a", 10, job) for _ in range(20)))
        kept = await memo.get("a", 13, job)  # 3 blocks on: still served
        again = await memo.get("a", 14, job)  # 4 blocks on: computed again
        return [*set(shared), kept, again]

    assert asyncio.run(scenario()) == [1, 1, 2]
    assert memo.runs == 2


def test_a_failed_job_is_not_kept() -> None:
    memo: Memo[str, int] = Memo(size=2, lag_blocks=3)

    async def broken() -> int:
        raise ApiError(503, "busy", slug="busy")

    async def fine() -> int:
        return 5

    async def scenario() -> int:
        with pytest.raises(ApiError):
            await memo.get("a", 1, broken)
        return await memo.get("a", 1, fine)

    assert asyncio.run(scenario()) == 5
