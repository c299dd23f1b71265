"""The Prometheus discovery directory is per user and checked before a run writes to it: nobody else may be
able to replace it, plant targets in it or swap it for a symlink (telemetry/discovery.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ami.telemetry.discovery import UnsafeDirectory, checked_sd_dir, sd_dir


def test_the_default_directory_is_per_user(monkeypatch) -> None:
    monkeypatch.delenv("AMI_PROMETHEUS_SD_DIR", raising=False)
    assert sd_dir() == Path(f"/tmp/ami-{os.getuid()}/prometheus")
    monkeypatch.setenv("AMI_PROMETHEUS_SD_DIR", "/somewhere/sd")
    assert sd_dir() == Path("/somewhere/sd") and sd_dir("/given") == Path("/given")


def test_missing_directories_are_made_private_to_writes_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)  # a umask that would leave new directories group-writable
    try:
        path = checked_sd_dir(str(tmp_path / "a" / "sd"))
    finally:
        os.umask(old)
    assert path.is_dir()
    assert [oct(p.stat().st_mode & 0o777) for p in (path, path.parent)] == ["0o755", "0o755"]
    assert checked_sd_dir(str(path)) == path  # an existing safe directory is used as it is


@pytest.mark.parametrize("case", ["group-writable leaf", "world-writable parent", "a file", "symlink to unsafe"])
def test_a_directory_others_could_change_is_refused(tmp_path: Path, case: str) -> None:
    leaf = tmp_path / "p" / "sd"
    leaf.parent.mkdir(mode=0o755)
    if case == "group-writable leaf":
        leaf.mkdir()
        leaf.chmod(0o775)
    elif case == "world-writable parent":  # no sticky bit: anyone may rename sd away and put their own there
        leaf.parent.chmod(0o777)
    elif case == "a file":
        leaf.write_text("")
    else:
        (tmp_path / "open").mkdir()
        (tmp_path / "open").chmod(0o777)
        leaf.symlink_to(tmp_path / "open")
    with pytest.raises(UnsafeDirectory, match=str(leaf)):
        checked_sd_dir(str(leaf))


def test_a_sticky_shared_parent_like_tmp_is_fine(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # others can add entries there but not replace ours
    assert checked_sd_dir(str(shared / "me" / "sd")).is_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="making a directory of another user needs root")
def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 12345, 12345)
    with pytest.raises(UnsafeDirectory, match="owned by uid 12345"):
        checked_sd_dir(str(theirs))


def test_ami_train_refuses_an_unsafe_directory_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    sd = tmp_path / "sd"
    sd.mkdir()
    sd.chmod(0o777)
    r = subprocess.run([sys.executable, "-m", "ami.cluster.cli", "train", "--backend", "inline", "--env",
                        "Pendulum-v1", "--steps", "10", "--run-dir", str(tmp_path / "run")], capture_output=True,
                       text=True, env={**os.environ, "AMI_PROMETHEUS_SD_DIR": str(sd)}, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "writable by group or others" in lines[0], r.stderr
    assert not (tmp_path / "run").exists() and list(sd.iterdir()) == []
