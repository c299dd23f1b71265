"""Shared test fixtures (keep small): a private redis-server for the whole session."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def redis_server():
    """A private redis-server on a free loopback port (no persistence), stopped at the end of the session.

    Yields a memory.embedded.EmbeddedRedis; use `.url`. Tests sharing it must use their own key namespace.
    """
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed (apt-get install -y redis-server)")
    from ami.memory.config import EmbeddedRedisConfig
    from ami.memory.embedded import EmbeddedRedis

    server = EmbeddedRedis(EmbeddedRedisConfig(appendonly=False))
    server.start()
    yield server
    server.stop()


HEALTH_CHECKS = {"health_check_period_ms": 1000, "health_check_timeout_ms": 2000, "health_check_failure_threshold": 5}
"""How soon the session's cluster finds a dead node (the node drills wait on it): a raylet that answers no health
check for ~5 s, not Ray's default ~15 s (2026-12-07: a SIGKILLed raylet was marked dead 8.8 s after the kill
against 16.8 s with the defaults); 2 s per check and five misses in a row leave a live raylet on a busy box alone."""


@pytest.fixture(scope="session")
def ray_cluster():
    """One Ray cluster for every Ray test of the session: two nodes of one CPU each on this machine
    (ray.cluster_utils.Cluster), so placement across nodes is observable; shut down at the end. Never start a
    second Ray in the session: `ami train` subprocesses attach with --ray-address ray_cluster.address."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False, "_system_config": HEALTH_CHECKS})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def pytest_configure(config) -> None:
    """One torch thread per process: tests share two cores with Ray workers and servers."""
    import torch

    torch.set_num_threads(1)
