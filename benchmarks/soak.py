"""Soak: one undisturbed `ami train --backend ray` run, then the same run with a random SIGKILL every few minutes
(an actor, the learner or the private redis-server), side by side. Not run in CI.

    python benchmarks/soak.py --steps 200000 --kill-every 180 --actors 2 [--parallel] [key=value ...]

--parallel runs both at once (same load on both, half the wall time); kills only ever hit the chaos run's own
processes (found by a marker in their environment, which Ray workers inherit from the driver).

Prints (and writes --out as JSON): per run the wall time, env steps stored against the target (steps lost =
target - stored, steps duplicated = stored - target: both 0 when recovery is exact), restarts per process kind,
recovery time per fault (kill -> the driver's ami_driver_restarts_total counting it, read from its /metrics) and
the final eval return.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("actor", "learner", "redis")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def restarts(port: int, kind: str) -> float | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("ami_driver_restarts_total{") and f'process="{kind}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def pids(pred) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if pred(d):
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


MARK = "AMI_SOAK_RUN"
"""Environment variable naming the soak run a process belongs to."""


def victim(kind: str, driver_pid: int, name: str) -> int | None:
    """A pid of run `name` to kill for this fault kind (Ray workers by process title; redis: the driver's child)."""
    if kind == "redis":
        found = pids(lambda d: int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == driver_pid
                     and b"redis-server" in (d / "cmdline").read_bytes().split(b" ")[0])
    else:
        title = b"ray::ActorWorker" if kind == "actor" else b"ray::LearnerActor"
        mark = f"{MARK}={name}".encode()
        found = pids(lambda d: (d / "cmdline").read_bytes().startswith(title)
                     and mark in (d / "environ").read_bytes().split(b"\0"))
    return random.choice(found) if found else None


def one_run(name: str, a: argparse.Namespace, out: Path, kill_every: float | None) -> dict:
    port = free_port()
    run = out / name
    cmd = [sys.executable, "-m", "ami.cluster.cli", "train", "--backend", "ray", "--env", a.env, "--steps",
           str(a.steps), "--actors", str(a.actors), "--seed", str(a.seed), "--run-dir", str(run),
           "--metrics-port", str(port), "--no-progress", "runtime.max_restarts=1000", *a.overrides]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AMI_PROMETHEUS_SD_DIR": str(out / "sd"), MARK: name}
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=open(out / f"{name}.log", "w"), text=True)
    faults: list[dict] = []
    next_kill = t0 + kill_every if kill_every else float("inf")
    while p.poll() is None:
        time.sleep(0.5)
        for f in faults:  # recovery: the driver counted the restart
            if "recovered_s" not in f and (restarts(port, f["kind"]) or 0) > f["count_before"]:
                f["recovered_s"] = time.monotonic() - f["t"]
        if time.monotonic() >= next_kill:
            kind = random.choice(KINDS)
            pid = victim(kind, p.pid, name)
            if pid is not None:
                before = restarts(port, kind) or 0.0
                os.kill(pid, signal.SIGKILL)
                faults.append({"kind": kind, "t": time.monotonic(), "at_s": time.monotonic() - t0,
                               "count_before": before})
                print(f"[{name}] {time.monotonic() - t0:7.1f}s SIGKILL {kind} (pid {pid})", flush=True)
            next_kill += kill_every
    stdout, _ = p.communicate()
    if p.returncode != 0:
        return {"name": name, "returncode": p.returncode, "faults": faults}
    s = json.loads(stdout.strip().splitlines()[-1])
    by_kind = {k: [f["recovered_s"] for f in faults if f["kind"] == k and "recovered_s" in f] for k in KINDS}
    return {"name": name, "wall_s": time.monotonic() - t0, "target_steps": a.steps, "stored_steps": s["env_steps"],
            "steps_lost": max(0, a.steps - s["env_steps"]), "steps_duplicated": max(0, s["env_steps"] - a.steps),
            "faults": len(faults), "restarts": s.get("restarts"), "recovery_s": by_kind,
            "unrecovered": [f["kind"] for f in faults if "recovered_s" not in f],
            "eval_return_mean": s["eval_return_mean"], "updates": s["updates"], "weights_version": s["weights_version"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="Pendulum-v1")
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kill-every", type=float, default=180.0, help="seconds between random kills")
    ap.add_argument("--parallel", action="store_true", help="run the undisturbed and the chaos run at once")
    ap.add_argument("--out", default="")
    ap.add_argument("overrides", nargs="*", metavar="key.path=value")
    a = ap.parse_args()
    random.seed(a.seed)
    out = Path(a.out or tempfile.mkdtemp(prefix="ami-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    jobs = [("undisturbed", None), ("chaos", a.kill_every)]
    with ThreadPoolExecutor(2 if a.parallel else 1) as ex:
        results = list(ex.map(lambda j: one_run(j[0], a, out, j[1]), jobs))
    print(json.dumps(results, indent=1))
    (out / "soak.json").write_text(json.dumps(results, indent=1))
    return 0 if all("stored_steps" in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
