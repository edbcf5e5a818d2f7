"""One cluster (tests/chaos/harness.py) for the whole fault suite: private Postgres, two private
redis-servers (cache and broker), the emulator, two web processes, two workers and one beat. Each
test injects one fault into it and leaves it healthy for the next."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.harness import Cluster

# The suite's cluster looks for a killed process's calls twice as often as scripts/reliability.py's
# (harness.CLUSTER_ENV: a heartbeat every 1 s living 3 s, a reaper look every 1 s, so a killed call is
# billed 5-7 s after the kill): a heartbeat every 0.5 s living 2 s, a reaper look every 0.5 s, a process
# confirmed dead on two looks 1.5 s apart (CALLS_ORPHAN_CONFIRM_SECONDS: heartbeat interval + 1). The
# same reaper and the same two-look rule (a Redis outage still outlasts the heartbeat: the Redis cell
# holds it down 4 s); each kill cell waits ~2-3 s less.
FAST_REAPER = {
    "CALLS_HEARTBEAT_TTL_SECONDS": "2",
    "CALLS_HEARTBEAT_SECONDS": "0.5",
    "CALLS_REAPER_INTERVAL_SECONDS": "0.5",
}


@pytest.fixture(scope="session")
def chaos_cluster() -> Iterator[Cluster]:
    with Cluster(webs=2, workers=2, extra_env=FAST_REAPER) as cluster:
        yield cluster


@pytest.fixture
def cluster(chaos_cluster: Cluster) -> Cluster:
    """The cluster with every worker alive and no fault left over from the test before."""
    chaos_cluster.ensure_workers()
    chaos_cluster.emulator.set_config(model_faults={})
    return chaos_cluster
