"""Redis-only behaviour: keys left behind, shards, foreign values, security, factory."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import redis
from scipy import stats as sstats

from ami.memory.config import EmbeddedRedisConfig, ReplayConfig, redact_url
from ami.memory.embedded import EmbeddedRedis, RedisServerNotFound
from ami.memory.redis_replay import RedisReplay, ReplayUnreachable, check_urls
from tests.memory.replay_helpers import delete_namespace, make_segment


@pytest.fixture
def ns(redis_server):
    name = f"test:{uuid.uuid4().hex[:12]}"
    yield name
    for db in (0, 1):
        delete_namespace(redis_server.url.rsplit("/", 1)[0] + f"/{db}", name)


def _cfg(url, ns, **kw):
    return ReplayConfig(urls=(url,) if isinstance(url, str) else tuple(url), namespace=ns, **kw)


def test_eviction_leaves_no_orphaned_keys(redis_server, ns):
    rep = RedisReplay(_cfg(redis_server.url, ns, capacity_transitions=500, prioritized=True, seed=0))
    rng = np.random.default_rng(1)
    for i in range(400):
        rep.add(make_segment(int(rng.integers(1, 41)), 100 * i))
        assert rep.size() <= 500
        if i % 10 == 9:  # priorities create NS:prio:<id> keys that eviction must remove too
            b = rep.sample(32, 2)
            rep.update_priorities(b.keys, rng.random(32) + 0.1)
    client = redis.Redis.from_url(redis_server.url)
    keys = {k.decode() for k in client.scan_iter(match=f"{ns}:*", count=1000)}
    members = [m.decode().split(":") for m in client.zrange(f"{ns}:idx", 0, -1)]
    ids = [int(m[0]) for m in members]
    seg_keys = {k for k in keys if k.startswith(f"{ns}:seg:")}
    prio_keys = {k for k in keys if k.startswith(f"{ns}:prio:")}
    assert keys == {f"{ns}:ctr", f"{ns}:idx", f"{ns}:writers"} | seg_keys | prio_keys
    assert seg_keys == {f"{ns}:seg:{i}" for i in ids}
    assert prio_keys and prio_keys <= {f"{ns}:prio:{i}" for i in ids}
    # oldest first: the survivors are exactly the newest segments
    assert ids == list(range(401 - len(ids), 401))
    assert sum(int(m[1]) for m in members) == rep.size() <= 500
    st = rep.stats()
    assert st["inserted_segments"] == 400 and st["evicted_segments"] == 400 - len(ids)
    rep.close()


def test_two_shards_sampled_in_proportion_to_size(redis_server, ns):
    base = redis_server.url.rsplit("/", 1)[0]
    urls = (f"{base}/0", f"{base}/1")
    a = RedisReplay(_cfg(urls[0], ns, capacity_transitions=10_000))
    b = RedisReplay(_cfg(urls[1], ns, capacity_transitions=10_000))
    for i in range(30):  # shard 0: 30 × 10 transitions, shard 1: 10 × 7
        a.add(make_segment(10, 1000 + 100 * i))
    for i in range(10):
        b.add(make_segment(7, 100_000 + 100 * i))
    both = RedisReplay(_cfg(urls, ns, capacity_transitions=20_000, seed=3))
    steps = np.concatenate([both.sample(256, 1).data["step"][:, 0] for _ in range(40)])
    from_a = int((steps < 100_000).sum())
    assert sstats.binomtest(from_a, len(steps), 300 / 370).pvalue > 1e-3
    _, counts = np.unique(steps, return_counts=True)
    assert len(counts) == 370 and sstats.chisquare(counts).pvalue > 1e-3
    # a sharded writer spreads segments evenly
    for i in range(40):
        both.add(make_segment(5, 200_000 + 100 * i))
    assert a.size() - 300 == b.size() - 70 == 100
    for r in (a, b, both):
        r.close()


PLANTED = "/tmp/ami-pickle-side-effect-{}"


def _pickle_payload(path: str) -> bytes:
    """Protocol-0 pickle that runs `touch path` when unpickled (hand-written: no pickle module here)."""
    return f"cos\nsystem\n(S'touch {path}'\ntR.".encode()


def test_pickle_payload_is_live_in_a_throwaway_process(tmp_path):
    # proves the payload used below really has a side effect when something does unpickle it
    target = tmp_path / "proof"
    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", code], input=_pickle_payload(str(target)), check=True)
    assert target.exists()


@pytest.mark.parametrize("cache_bytes", [2 << 30, 0], ids=["mirror", "ranges"])
def test_garbage_and_pickle_values_are_skipped_and_counted(redis_server, ns, caplog, cache_bytes):
    marker = PLANTED.format(uuid.uuid4().hex)
    rep = RedisReplay(_cfg(redis_server.url, ns, capacity_transitions=10_000, seed=0, sample_cache_bytes=cache_bytes))
    for i in range(10):
        rep.add(make_segment(8, 100 * i))
    client = redis.Redis.from_url(redis_server.url)
    client.set(f"{ns}:seg:3", os.urandom(500))  # segment ids start at 1
    client.set(f"{ns}:seg:7", _pickle_payload(marker))
    client.zadd(f"{ns}:idx", {b"\x80\x04not-an-entry": 1e12})
    client.set(f"{ns}:seg:stray", _pickle_payload(marker))
    with caplog.at_level(logging.WARNING, logger="ami.memory"):
        steps = np.concatenate([rep.sample(256, 3).data["step"][:, 0] for _ in range(20)])
    assert not os.path.exists(marker)
    bad_steps = set(range(200, 208)) | set(range(600, 608))
    assert not bad_steps & set(steps.tolist())
    assert len(np.unique(steps)) == 64
    st = rep.stats()
    assert st["corrupt_skipped"] == 3  # two values + one index entry
    assert "corrupt segment" in caplog.text
    # a second sampler counts them as well, and writing on continues normally
    other = RedisReplay(_cfg(redis_server.url, ns, capacity_transitions=10_000, seed=1,
                             sample_cache_bytes=cache_bytes))
    other.sample(256, 2)
    assert other.stats()["corrupt_skipped"] >= 3
    rep.add(make_segment(8, 5000))
    assert rep.size() == 88
    assert not os.path.exists(marker)
    rep.close()
    other.close()


def test_priorities_persist_for_a_new_sampler(redis_server, ns):
    cfg = _cfg(redis_server.url, ns, capacity_transitions=10_000, prioritized=True, priority_alpha=1.0, seed=0)
    rep = RedisReplay(cfg)
    for i in range(4):
        rep.add(make_segment(5, 100 * i))
    seen = {}
    while len(seen) < 20:
        b = rep.sample(64, 1)
        seen.update(zip(b.data["step"][:, 0].tolist(), b.keys, strict=True))
    steps = np.array(sorted(seen))
    prio = np.where(steps == 302, 50.0, 1.0)  # one transition carries most of the mass
    rep.update_priorities([seen[s] for s in steps], prio)
    fresh = RedisReplay(cfg)
    drawn = np.concatenate([fresh.sample(256, 1).data["step"][:, 0] for _ in range(10)])
    assert abs((drawn == 302).mean() - 50 / 69) < 0.05
    rep.close()
    fresh.close()


def test_passwords_never_shown(tmp_path, caplog):
    secret = "s3cret-" + uuid.uuid4().hex[:8]
    cfg = EmbeddedRedisConfig(dir=str(tmp_path / "srv"), password=secret, appendonly=False)
    with EmbeddedRedis(cfg) as server:
        assert secret not in repr(server) and secret not in repr(cfg)
        assert secret in server.url  # the URL itself works...
        rcfg = ReplayConfig(urls=(server.url,), namespace="t", capacity_transitions=100)
        rep = RedisReplay(rcfg)
        rep.add(make_segment(5, 0))
        assert rep.sample(4, 2).mask.shape == (4, 2)
        for text in (repr(rep), repr(rcfg), str(rcfg), str(rep.stats())):
            assert secret not in text
        wrong = server.url.replace(secret, "wrong")
        with pytest.raises(ReplayUnreachable) as err:
            check_urls([wrong])
        assert "wrong" not in str(err.value) and secret not in str(err.value)
        with caplog.at_level(logging.DEBUG):
            server.kill()
            rep.add(make_segment(5, 10))  # unreachable: buffered, warning logged
            server.start()
            assert rep.flush(5.0)
        assert "unreachable" in caplog.text and secret not in caplog.text
        rep.close()
    assert redact_url(f"rediss://user:{secret}@db:6380/0") == "rediss://user:***@db:6380/0"


def test_unix_socket_server(tmp_path):
    with EmbeddedRedis(EmbeddedRedisConfig(dir=str(tmp_path), unix_socket=True, appendonly=False)) as server:
        assert server.url.startswith("unix://")
        assert oct(os.stat(server.socket_path).st_mode & 0o777) == "0o700"
        with RedisReplay(ReplayConfig(urls=(server.url,), capacity_transitions=100)) as rep:
            rep.add(make_segment(5, 0))
            assert rep.size() == 5


def test_missing_redis_server_binary_is_a_clear_error():
    with pytest.raises(RedisServerNotFound, match="apt-get install -y redis-server"):
        EmbeddedRedis(EmbeddedRedisConfig(binary="redis-server-does-not-exist"))


def test_tls_rediss_url(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    port, secret = _free_port(), "tls-" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--requirepass", secret,
         "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"rediss://:{secret}@localhost:{port}/0?ssl_ca_certs={cert}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                check_urls([url])
                break
            except ReplayUnreachable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with pytest.raises(ReplayUnreachable) as err:  # the same port refuses plain text
            check_urls([url.replace("rediss://", "redis://").split("?")[0]], timeout_s=1.0)
        assert secret not in str(err.value)
        with RedisReplay(ReplayConfig(urls=(url,), namespace="tls", capacity_transitions=100, seed=0)) as rep:
            rep.add(make_segment(6, 0, terminated=[2]))
            b = rep.sample(8, 4)
            assert b.mask.shape == (8, 4) and not b.mask[:, 3].all()
            assert secret not in repr(rep)
    finally:
        proc.terminate()
        proc.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_is_one_clear_error_without_password():
    from ami import memory

    url = f"redis://admin:hunter2@127.0.0.1:{_free_port()}/0"
    with pytest.raises(memory.ReplayUnreachable, match=r"cannot reach redis at redis://admin:\*\*\*@127\.0\.0\.1"):
        memory.check_urls([url], timeout_s=0.5)
    with pytest.raises(memory.ReplayUnreachable) as err:
        memory.check_urls(["http://:hunter2@x"])
    assert "hunter2" not in str(err.value)
