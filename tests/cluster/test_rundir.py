"""Checkpoints survive a writer killed at any point of the write: a resume always finds one that loads, and the
temp files of the dead writer are removed when the run directory is opened again."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest
import torch

from ami.cluster import rundir
from ami.cluster.config import ConfigError
from ami.cluster.rundir import RunDir
from ami.learner.learner import checkpoint_state


def _checkpoint(version: int) -> bytes:
    buf = io.BytesIO()
    torch.save({"counters": {"version": version}, "weights": torch.full((256, 256), float(version))}, buf)
    return buf.getvalue()


def _die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


# where the writer dies: (what is replaced by a SIGKILL of the writing process)
POINTS = {
    "keeping the previous one": (os, "link"),
    "before writing the new one": (RunDir, "write"),
    "with the new bytes written, not yet synced": (os, "fsync"),
    "after the rename, before the directory sync": (rundir, "_fsync_dir"),
}


@pytest.mark.parametrize("point", POINTS)
def test_a_writer_killed_mid_checkpoint_leaves_one_that_loads(tmp_path: Path, point: str) -> None:
    run = RunDir(tmp_path / "run")
    run.create()
    run.write_checkpoint(_checkpoint(1))
    run.write_checkpoint(_checkpoint(2))  # latest.pt = 2, previous.pt = 1
    third = _checkpoint(3)  # made before the fork: the child runs no torch kernel (a forked thread pool may hang)
    pid = os.fork()
    if pid == 0:  # the writer: dies at `point` while writing checkpoint 3
        try:
            owner, name = POINTS[point]
            setattr(owner, name, _die)
            run.write_checkpoint(third)
        finally:
            os._exit(1)  # reached only if the point was never passed: the parent sees no SIGKILL
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the writer did not die at the point"

    reopened = RunDir(run.path)
    reopened.create()  # what a resume does first: the dead writer's temp files go
    assert not list(run.path.rglob("*.tmp"))
    data, state = reopened.read_checkpoint(checkpoint_state)
    assert state["counters"]["version"] in (2, 3)
    assert float(state["weights"][0, 0]) == state["counters"]["version"]  # whole, not a mix of two writes


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path: Path, capsys) -> None:
    run = RunDir(tmp_path / "run")
    run.create()
    run.write_checkpoint(_checkpoint(1))
    run.write_checkpoint(_checkpoint(2))
    run.latest_checkpoint.write_bytes(run.latest_checkpoint.read_bytes()[:1000])  # truncated on a bad disk
    _, state = run.read_checkpoint(checkpoint_state)
    assert state["counters"]["version"] == 1
    assert "latest.pt" in capsys.readouterr().err  # said once, on stderr
    run.previous_checkpoint.write_bytes(b"\x80\x04garbage")
    with pytest.raises(ConfigError, match="no checkpoint loads"):
        run.read_checkpoint(checkpoint_state)


def test_temp_files_of_live_writers_stay(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.create()
    mine = run.checkpoints / f".latest.pt.{os.getpid()}.tmp"  # this process is alive: a concurrent writer
    mine.write_bytes(b"x")
    dead = run.path / ".summary.json.999999999.tmp"  # no such pid
    dead.write_bytes(b"x")
    assert run.remove_stale_temporaries() == [dead]
    assert mine.exists() and not dead.exists()
    assert run.read_checkpoint(checkpoint_state) is None  # no checkpoint yet: a fresh start, not an error
