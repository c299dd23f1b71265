"""Helpers of the chaos drills: a run of `ami train --backend ray` on the session's cluster in a thread of the
test process, its processes found by their Ray process titles, its metrics read from the endpoints it exports."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import pytest
import redis

from ami.cluster.cli import main
from ami.memory.codec import decode_segment
from tests.runtime.conftest import TINY
from tests.util import wait_for  # noqa: F401 (re-exported to the drills)

CHAOS = [*TINY, "runtime.poll_s=0.1", "learner.updates_per_step=0.25", "run.eval_every=1000000",
         "run.eval_episodes=1"]
"""A tiny run for the drills: they test counting, recovery and cleanup, not learning. One update per four steps:
at one per step the learner (~10 ms an update on its share of two cores) paced every drill at ~33 steps/s; at
0.25 the actors run at ~70 (measured 2026-12-07: a 900-step two-actor run, 35 s -> 20 s). Drills that need the
learner's pace set one per step again: a killed learner must be back and a restarted actor's endpoint up before the
last step, the dead-node hang needs the actors' update gap. One evaluation, the final one, of one episode: every
300 steps (TINY's), a 4000-step drill spent ~13 evaluations of 400 planning decisions each on the two cores its
actors and learner need."""


def two_live_nodes(cluster) -> None:
    """Give the session's cluster two live nodes again after a drill killed one (or a raylet died on its own: in
    CI one did after the SIGINT drill, and every drill after it failed on a one-node cluster)."""
    for node in list(cluster.worker_nodes):  # (the raylet itself: Ray marks it dead ~9 s late, HEALTH_CHECKS)
        if node.all_processes["raylet"][0].process.poll() is not None:
            cluster.remove_node(node, allow_graceful=False)
    while len(cluster.worker_nodes) < 1:
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()


@pytest.fixture(autouse=True)
def _two_nodes(request):
    """Every drill on the session's cluster starts on two live nodes."""
    if "ray_cluster" in request.fixturenames:
        two_live_nodes(request.getfixturevalue("ray_cluster"))


class Train:
    """`ami train ARGS` in a thread (the driver is this process, attached to the session's Ray)."""

    def __init__(self, args: list[str]):
        self.rc: int | None = None
        self.thread = threading.Thread(target=lambda: setattr(self, "rc", main(args)), daemon=True)
        self.thread.start()

    def join(self, timeout: float = 240) -> int | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not finish"
        return self.rc


def ray_pids(title: str) -> list[int]:
    """Pids of the live Ray workers running an actor of class `title` (their process title is ray::<title>...)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
                if cmd.startswith(f"ray::{title}".encode()) and b"IDLE" not in cmd:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def scrape(address: str) -> dict[str, float]:
    """`name{labels}` -> value of a /metrics endpoint (names without labels too, for the unlabelled lookups)."""
    try:
        text = urllib.request.urlopen(f"http://{address}/metrics", timeout=2).read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, val = line.rpartition(" ")
            out[key] = float(val)
            out.setdefault(key.split("{")[0], float(val))
    return out


def metric(address: str | None, name: str, **labels: str) -> float | None:
    """Value of the first series of `name` whose labels include `labels` (None before `address` is known)."""
    if address is None:
        return None
    for key, v in scrape(address).items():
        if key.split("{")[0] == name and all(f'{k}="{x}"' in key for k, x in labels.items()):
            return v
    return None


def targets(sd_dir: Path) -> dict[str, str]:
    """role+actor_id -> host:port, from the run's discovery file."""
    out = {}
    for f in sd_dir.glob("*.json"):
        for g in json.loads(f.read_text()):
            out[f"{g['labels']['role']}{g['labels'].get('actor_id', '')}"] = g["targets"][0]
    return out


def driver_metric(sd_dir: Path, name: str, **labels: str) -> float | None:
    """A driver metric of the run whose discovery file is in sd_dir. The drills find the driver there rather than
    on a `--metrics-port` picked beforehand: a port free when the test picked it can be taken before the driver
    binds it (a drill once failed on "Address already in use"); the driver's kernel-chosen port cannot."""
    return metric(targets(sd_dir).get("driver"), name, **labels)


def stored_steps(url: str, run_name: str) -> tuple[int, list]:
    """Transitions in the stored segments of a run's replay namespace, and the segments."""
    client = redis.Redis.from_url(url)
    segs = [decode_segment(client.get(k)) for k in client.scan_iter(match=f"ami:{run_name}-*:replay:seg:*",
                                                                      count=1000)]
    client.close()
    return sum(len(g) for g in segs), segs


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())
