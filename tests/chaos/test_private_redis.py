"""The redis-server a run starts for itself has a password of its own: no other local user can read or poison the
replay, the password is on no command line, and a cluster spanning hosts is refused without --redis-url."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from ami.cluster.config import ConfigError
from ami.cluster.services import Services, other_hosts


def test_the_private_redis_server_has_a_password_of_its_own(ray_cluster) -> None:
    services = Services(None, None).start()  # attaches to the session's Ray, starts its own redis-server
    try:
        url = urlsplit(services.url)
        assert url.password and len(url.password) >= 24 and url.hostname == "127.0.0.1"
        with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
            redis.Redis(host=url.hostname, port=url.port, socket_timeout=5).keys("*")  # another local user
        assert redis.Redis.from_url(services.url, socket_timeout=5).ping()
        server = services._server
        assert url.password.encode() not in Path(f"/proc/{server.pid}/cmdline").read_bytes()  # `ps` shows no secret
        assert (Path(server.dir) / "redis.conf").stat().st_mode & 0o077 == 0  # where it is written: 0600
        other = Services(None, None).start()
        try:
            assert urlsplit(other.url).password != url.password  # random per run
        finally:
            other.close()
    finally:
        services.close()


def test_nodes_on_other_hosts_need_a_shared_redis(ray_cluster, monkeypatch) -> None:
    nodes = [{"Alive": True, "NodeManagerAddress": "127.0.0.1"},
             {"Alive": True, "NodeManagerAddress": "192.0.2.7"},  # TEST-NET-1: on no interface of this machine
             {"Alive": False, "NodeManagerAddress": "192.0.2.8"}]
    assert other_hosts(nodes) == {"192.0.2.7"}
    assert other_hosts(nodes[:1]) == set()
    import ray

    monkeypatch.setattr(ray, "nodes", lambda: nodes)  # as an attached multi-host cluster reports itself
    with pytest.raises(ConfigError, match="192.0.2.7.*--redis-url"):
        Services(None, None).start()
