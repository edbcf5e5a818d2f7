"""One cluster (tests/chaos/harness.py) for the whole fault suite: private Postgres, two private
redis-servers (cache and broker), the emulator, two web processes, two workers and one beat. Each
test injects one fault into it and leaves it healthy for the next."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.harness import Cluster


@pytest.fixture(scope="session")
def chaos_cluster() -> Iterator[Cluster]:
    with Cluster(webs=2, workers=2) as cluster:
        yield cluster


@pytest.fixture
def cluster(chaos_cluster: Cluster) -> Cluster:
    """The cluster with every worker alive and no fault left over from the test before."""
    chaos_cluster.ensure_workers()
    chaos_cluster.emulator.set_config(model_faults={})
    return chaos_cluster
