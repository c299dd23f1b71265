"""Bad inputs to `ami train --backend ray`: one line on stderr, exit 2, no run directory, nothing left running."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.runtime.conftest import AMI, tagged_env, tagged_processes


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket goes


@pytest.mark.parametrize("args", [
    ["--env", "NoSuchEnv-v9"],
    ["runtime.no_such_key=1"],
    ["--redis-url", "redis://127.0.0.1:{port}/0"],
    ["--ray-address", "127.0.0.1:{port}"],
    ["--redis-url", "not-a-url"],
])
def test_bad_input_exits_2_one_line_nothing_written_nothing_running(tmp_path: Path, args: list[str]) -> None:
    port = _closed_port()
    env, tag = tagged_env()
    args = [a.format(port=port) for a in args]
    res = subprocess.run([*AMI, "train", "--backend", "ray", "--steps", "100", "--run-dir", "out", *args],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    lines = [s for s in res.stderr.splitlines() if s.strip()]
    assert len(lines) == 1 and lines[0].startswith("ami: error:"), res.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()
    time.sleep(0.2)
    assert tagged_processes(tag) == []


def test_ray_address_from_environment_is_checked(tmp_path: Path) -> None:
    env, tag = tagged_env()
    env["RAY_ADDRESS"] = f"127.0.0.1:{_closed_port()}"
    res = subprocess.run([*AMI, "train", "--backend", "ray", "--steps", "100", "--run-dir", "out"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "cannot reach Ray" in res.stderr, res.stderr
    assert not (tmp_path / "out").exists() and tagged_processes(tag) == []


def test_scale_without_a_running_run_exits_2(tmp_path: Path) -> None:
    res = subprocess.run([*AMI, "scale", str(tmp_path), "--actors", "3"], env=tagged_env()[0],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
