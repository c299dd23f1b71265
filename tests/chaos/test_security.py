"""Redis with an ACL user and password, plain and over TLS (a CA and server certificate made here with openssl):
`ami train --backend ray` works end to end with the URL in $AMI_REDIS_URL or a 0600 --redis-url-file, and the
password shows up in no output, no file of the run directory, no Ray log and no command line `ps` shows while
the run goes on; a wrong password is one line on stderr and exit 2."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from tests.chaos.conftest import summary
from tests.runtime.conftest import AMI, TINY, tagged_env
from tests.util import free_port

PASSWORD = "s3cret-Pa55word-7f3a9c"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def make_certs(d: Path) -> None:
    """A CA and a server certificate for 127.0.0.1, signed by it."""
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ami-test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out",
        "server.csr")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-extfile", "san.ext", "-out", "server.crt")


@pytest.fixture(scope="module")
def secure_redis(tmp_path_factory):
    """redis-server: default user off, user `ami` with PASSWORD; a plain port and a TLS port."""
    d = tmp_path_factory.mktemp("secure-redis")
    make_certs(d)
    port, tls_port = free_port(), free_port()
    (d / "redis.conf").write_text("\n".join([
        "bind 127.0.0.1", f"port {port}", f"tls-port {tls_port}", f"dir {d}", 'save ""', "appendonly no",
        f"tls-cert-file {d / 'server.crt'}", f"tls-key-file {d / 'server.key'}", f"tls-ca-cert-file {d / 'ca.crt'}",
        "tls-auth-clients no", "user default off", f"user ami on >{PASSWORD} ~* &* +@all"]) + "\n")
    proc = subprocess.Popen(["redis-server", str(d / "redis.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    auth = f"ami:{quote(PASSWORD, safe='')}"
    urls = {"acl": f"redis://{auth}@127.0.0.1:{port}/0",
            "tls": f"rediss://{auth}@127.0.0.1:{tls_port}/0?ssl_cert_reqs=required&ssl_ca_certs={d / 'ca.crt'}"}
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(urls["acl"]).ping()
            break
        except redis.exceptions.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    yield {**urls, "bad": f"redis://ami:{quote(PASSWORD[::-1], safe='')}@127.0.0.1:{port}/0",
           "noauth": f"redis://127.0.0.1:{port}/0"}
    proc.terminate()
    proc.wait(10)


def leaks(text: str) -> bool:
    return PASSWORD in text or quote(PASSWORD, safe="") in text or PASSWORD[::-1] in text


def command_lines() -> str:
    """Every process's command line as `ps` shows them to any user of the machine."""
    return subprocess.run(["ps", "-eww", "-o", "args="], capture_output=True, text=True, timeout=10).stdout


@pytest.mark.parametrize("kind,via", [("acl", "env"), ("tls", "file")])
def test_acl_and_tls_work_end_to_end_and_the_password_leaks_nowhere(ray_cluster, secure_redis, tmp_path,
                                                                    kind: str, via: str) -> None:
    run, env = tmp_path / f"secure-{kind}", tagged_env()[0]
    if via == "env":
        env["AMI_REDIS_URL"], source = secure_redis[kind], []
    else:
        (tmp_path / "redis-url").write_text(secure_redis[kind] + "\n")
        (tmp_path / "redis-url").chmod(0o600)
        source = ["--redis-url-file", str(tmp_path / "redis-url")]
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.Popen([*AMI, "train", "--backend", "ray", "--actors", "1", "--steps", "240", "--run-dir",
                              str(run), "--ray-address", ray_cluster.address, *source, *TINY],
                             cwd=tmp_path, env=env, stdout=o, stderr=e, text=True)
        seen = []  # `ps` every 0.2 s while the run goes on: the driver, its actor, learner and evaluator
        try:
            deadline = time.monotonic() + 180
            while p.poll() is None and time.monotonic() < deadline:
                seen.append(command_lines())
                time.sleep(0.2)
        finally:
            if p.poll() is None:
                p.kill()
    res = subprocess.CompletedProcess(p.args, p.wait(), out.read_text(), err.read_text())
    assert res.returncode == 0, res.stderr[-3000:]
    s = summary(run)
    assert s["env_steps"] == 240 == s["replay_inserted_transitions"] and s["weights_version"] >= 1
    assert not leaks(res.stdout) and not leaks(res.stderr)
    assert any("ami.cluster.cli train" in t and "ray::ActorWorker" in t for t in seen)  # ps saw the run
    assert [t for t in seen if leaks(t)] == []
    files = [p for p in run.rglob("*") if p.is_file() and p.suffix in (".yaml", ".jsonl", ".json", ".log", ".txt")]
    assert {"config.yaml", "metrics.jsonl", "summary.json"} <= {p.name for p in files}
    assert [p.name for p in files if leaks(p.read_text(errors="replace"))] == []
    from ray._private.state import jobs  # (Ray's job table; its public reader needs the dashboard, off here)

    mine = [j for j in jobs() if j["DriverPid"] == p.pid]  # Ray keeps each driver's command line as its entrypoint
    assert len(mine) == 1 and str(run) in mine[0]["Entrypoint"]
    assert [j["JobID"] for j in jobs() if leaks(str(j))] == []
    logs = Path(ray_cluster.head_node.get_session_dir_path()) / "logs"
    assert logs.is_dir()
    assert [p.name for p in logs.rglob("*") if p.is_file() and leaks(p.read_text(errors="replace"))] == []


@pytest.mark.parametrize("which", ["bad", "noauth"])
def test_wrong_or_missing_password_is_one_line_exit_2_without_the_password(secure_redis, tmp_path,
                                                                           which: str) -> None:
    env = {**tagged_env()[0], "AMI_REDIS_URL": secure_redis[which]}
    res = subprocess.run([*AMI, "train", "--backend", "ray", "--steps", "100", "--run-dir", "out"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("ami: error:"), res.stderr
    assert not leaks(res.stderr + res.stdout) and not (tmp_path / "out").exists()
