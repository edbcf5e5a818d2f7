"""core/singleflight.py: concurrent awaits of one read share one run of it."""

from __future__ import annotations

import asyncio

import pytest

from claudeapp.core.singleflight import SingleFlight


def test_callers_of_a_moment_share_one_run_and_later_ones_run_again():
    flight: SingleFlight[int] = SingleFlight()
    runs: list[str] = []

    async def read(key: str) -> int:
        runs.append(key)
        number = len(runs)
        await asyncio.sleep(0.01)
        return number

    async def scenario() -> tuple[list[tuple[int, bool]], tuple[int, bool]]:
        together = await asyncio.gather(*(flight.run(k, lambda k=k: read(k)) for k in ["a"] * 20 + ["b"] * 5))
        later = await flight.run("a", lambda: read("a"))
        return together, later

    together, later = asyncio.run(scenario())
    assert runs == ["a", "b", "a"]
    assert [shared for _, shared in together].count(False) == 2  # one leader per key
    assert {value for value, _ in together[:20]} == {1} and {value for value, _ in together[20:]} == {2}
    assert later == (3, False)


def test_a_failed_run_fails_every_caller_that_shared_it_and_is_not_kept():
    flight: SingleFlight[int] = SingleFlight()

    async def boom() -> int:
        await asyncio.sleep(0.01)
        raise ConnectionError("redis went away")

    async def scenario() -> list[BaseException | tuple[int, bool]]:
        return await asyncio.gather(*(flight.run("k", boom) for _ in range(5)), return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, ConnectionError) for o in outcomes)

    async def after() -> tuple[int, bool]:
        async def ok() -> int:
            return 7

        return await flight.run("k", ok)

    assert asyncio.run(after()) == (7, False)


@pytest.mark.parametrize("callers", [1, 3])
def test_each_event_loop_has_its_own_runs(callers):
    flight: SingleFlight[int] = SingleFlight()
    runs: list[int] = []

    async def read() -> int:
        runs.append(1)
        await asyncio.sleep(0.005)
        return 1

    async def scenario() -> None:
        await asyncio.gather(*(flight.run("k", read) for _ in range(callers)))

    asyncio.run(scenario())
    asyncio.run(scenario())  # a second loop: nothing shared with the first
    assert len(runs) == 2


def test_the_caller_that_started_a_run_leaving_does_not_fail_the_others():
    flight: SingleFlight[int] = SingleFlight()
    runs: list[int] = []

    async def read() -> int:
        runs.append(1)
        await asyncio.sleep(0.02)
        return 7

    async def scenario() -> tuple[bool, list[tuple[int, bool]]]:
        leader = asyncio.ensure_future(flight.run("k", read))
        await asyncio.sleep(0)  # the leader's run is on its way
        followers = [asyncio.ensure_future(flight.run("k", read)) for _ in range(3)]
        await asyncio.sleep(0.005)
        leader.cancel()  # its client went away
        shared = await asyncio.gather(*followers)
        with pytest.raises(asyncio.CancelledError):
            await leader
        return leader.cancelled(), shared

    cancelled, shared = asyncio.run(scenario())
    assert cancelled and shared == [(7, True)] * 3 and runs == [1]
