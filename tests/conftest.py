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


@pytest.fixture(scope="session")
def ray_cluster():
    """One Ray cluster for every Ray test of the session: two nodes of one CPU each on this machine
    (ray.cluster_utils.Cluster), so placement across nodes is observable; shut down at the end. Never start a
    second Ray in the session: `ami train` subprocesses attach with --ray-address ray_cluster.address."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def pytest_configure(config) -> None:
    """One torch thread per process: tests share two cores with Ray workers and servers."""
    import torch

    torch.set_num_threads(1)
