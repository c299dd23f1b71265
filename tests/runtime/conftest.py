"""Helpers of the Ray tests (the session's one Ray cluster, `ray_cluster`, lives in tests/conftest.py so that
tests/runtime, tests/observability and tests/chaos share it)."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AMI = [sys.executable, "-m", "ami.cluster.cli"]
TINY = ["--env", "Pendulum-v1", "--seed", "3", "--no-progress", "run.eval_every=300", "run.eval_episodes=2",
        "run.log_every=150", "learner.warmup_steps=150", "learner.batch_size=32", "learner.snapshot_every=10",
        "learner.checkpoint_every=50", "agent.world_model.hidden=32", "agent.encoder.hidden=32",
        "agent.planner.samples=16", "agent.planner.iterations=1", "runner.segment_length=16",
        "runtime.actor_cpus=0"]
"""A tiny run. Its actors reserve no CPUs: the session's cluster has two, and drills put more actors on it or
take a node away (the default on an attached cluster, a CPU per actor, has a drill of its own:
tests/runtime/test_autoscale.py)."""


def tagged_env() -> tuple[dict, str]:
    """Environment for an `ami` subprocess, marked so that every process it starts can be found later."""
    tag = uuid.uuid4().hex
    return {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
            "AMI_TEST_TAG": tag}, tag


def tagged_processes(tag: str) -> list[str]:
    """Command lines of live processes whose environment carries the tag."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if f"AMI_TEST_TAG={tag}".encode() in (d / "environ").read_bytes():
                out.append((d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120])
        except OSError:
            pass
    return out
