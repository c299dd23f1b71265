"""Soak: one undisturbed `ami train --backend ray` run, then the same run with a random SIGKILL every few minutes
(an actor, the learner or the run's redis-server) and one SIGTERM of the driver followed by `--resume`, side by
side. Not run in CI.

    python benchmarks/soak.py --steps 200000 --kill-every 180 --actors 2 [--sigterm-at 0.5] [--parallel | --runs chaos]
                               [key=value ...]

Each run has a redis-server of its own that this script starts (AOF, fsync every second) and passes with
--redis-url, so that the replay can be read after the run: a "redis" fault SIGKILLs it and starts it again on the
same port and AOF after --redis-down-s (what Kubernetes does to a Redis pod), and the run rides out the outage.
--parallel runs both at once (same load on both, half the wall time); kills only ever hit the chaos run's own
processes (found by a marker in their environment, which Ray workers inherit from the driver).

Prints (and writes --out as JSON): per run the wall time, env steps stored against the target (steps lost =
target - stored, steps duplicated = stored - target: both 0 when recovery is exact), the (actor, episode, step)
triples stored more than once (read from the replay's segments), restarts per process kind, recovery time per
fault (kill -> the driver counting the restart; redis: -> env steps moving again after the restart), the final
eval return, and the resident memory (VmRSS) of the driver and of each actor process after warm-up and at the
end of its life (the growth a long run would show).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("actor", "learner", "redis")
MARK = "AMI_SOAK_RUN"
"""Environment variable naming the soak run a process belongs to."""


def metric(sd: Path, name: str, **labels: str) -> float | None:
    """The driver's metric `name` (labels matched as substrings), from the endpoint in the run's discovery file."""
    import urllib.request

    addr = None
    for f in sd.glob("*.json"):
        for g in json.loads(f.read_text() or "[]"):
            if g["labels"].get("role") == "driver":
                addr = g["targets"][0]
    if addr is None:
        return None
    try:
        text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
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


def ray_workers(title: bytes, name: str) -> list[int]:
    mark = f"{MARK}={name}".encode()
    return pids(lambda d: (d / "cmdline").read_bytes().startswith(title)
                and mark in (d / "environ").read_bytes().split(b"\0"))


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Rss:
    """VmRSS of each process of a run: the first sample once the process is past its own warm-up (the run has
    moved `warm_steps` env steps since the process was first seen: a restarted actor or the resumed driver warms
    up like the first ones did), and the latest."""

    def __init__(self, warm_steps: float):
        self.warm_steps = warm_steps
        self.seen_at: dict[str, float] = {}
        self.warm: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def sample(self, procs: dict[str, int], steps: float) -> None:
        for key, pid in procs.items():
            mb = rss_mb(pid)
            if mb is not None:
                self.last[key] = mb
                if steps >= self.seen_at.setdefault(key, steps) + self.warm_steps:
                    self.warm.setdefault(key, mb)

    def report(self) -> dict[str, dict]:
        return {k: {"warm_mb": round(w, 1), "end_mb": round(self.last[k], 1), "growth": round(self.last[k] / w - 1, 4)}
                for k, w in self.warm.items()}


def duplicates(url: str, run_name: str) -> tuple[int, int]:
    """(transitions stored, (actor, episode, step) triples stored more than once) in a run's replay."""
    import redis

    from ami.memory.codec import decode_segment

    client = redis.Redis.from_url(url)
    seen: Counter = Counter()
    for k in client.scan_iter(match=f"ami:{run_name}-*:replay:seg:*", count=1000):
        g = decode_segment(client.get(k))
        m = g.meta
        seen.update((m.actor_id, m.episode_id, m.first_step + t) for t in range(len(g)))
    client.close()
    return sum(seen.values()), sum(1 for n in seen.values() if n > 1)


def launch(name: str, a: argparse.Namespace, out: Path, url: str, resume: bool) -> subprocess.Popen:
    run = out / name
    head = ["--resume", str(run)] if resume else ["--env", a.env, "--steps", str(a.steps), "--actors", str(a.actors),
                                                  "--seed", str(a.seed), "--run-dir", str(run)]
    cmd = [sys.executable, "-m", "ami.cluster.cli", "train", "--backend", "ray", *head, "--redis-url", url,
           "--no-progress", "runtime.max_restarts=1000", *a.overrides]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AMI_PROMETHEUS_SD_DIR": str(out / f"sd-{name}"),
           MARK: name}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=open(out / f"{name}.log", "a"), text=True)


def one_run(name: str, a: argparse.Namespace, out: Path, chaos: bool) -> dict:
    from ami.memory.config import EmbeddedRedisConfig
    from ami.memory.embedded import EmbeddedRedis

    server = EmbeddedRedis(EmbeddedRedisConfig(appendonly=True, appendfsync="everysec"))
    url = server.start()
    sd, t0, rss = out / f"sd-{name}", time.monotonic(), Rss(0.1 * a.steps)
    p = launch(name, a, out, url, resume=False)
    faults: list[dict] = []
    next_kill = t0 + a.kill_every if chaos else float("inf")
    term: dict = {} if chaos and a.sigterm_at > 0 else {"done": True}
    redis_back_at = None
    try:
        while True:
            if p.poll() is not None:
                if term.get("sent") and not term.get("done"):  # the SIGTERMed driver has finished: resume
                    term.update(done=True, rc=p.returncode, stopped_s=time.monotonic() - term["t"])
                    p = launch(name, a, out, url, resume=True)
                    continue
                break
            time.sleep(0.5)
            steps = metric(sd, "ami_driver_env_steps") or 0.0
            rss.sample({f"driver-{p.pid}": p.pid,
                        **{f"actor-{q}": q for q in ray_workers(b"ray::ActorWorker", name)}}, steps)
            if redis_back_at is not None and time.monotonic() >= redis_back_at:
                server.start()  # same port, same directory: the AOF brings the replay back
                redis_back_at = None
            for f in faults:
                if "recovered_s" in f:
                    continue
                if f["kind"] == "redis":
                    back = redis_back_at is None and steps > f["steps_before"]
                else:
                    back = (metric(sd, "ami_driver_restarts_total", process=f["kind"]) or 0) > f["count_before"]
                if back:
                    f["recovered_s"] = time.monotonic() - f["t"]
            if not term and steps >= a.sigterm_at * a.steps:
                p.send_signal(signal.SIGTERM)
                term.update(sent=True, t=time.monotonic(), at_steps=steps)
                print(f"[{name}] {time.monotonic() - t0:7.1f}s SIGTERM driver at {steps:.0f} steps", flush=True)
            if time.monotonic() >= next_kill and redis_back_at is None and not (term.get("sent") and
                                                                                 not term.get("done")):
                faults += kill_one(name, p.pid, server, sd, steps, t0)
                if faults and faults[-1]["kind"] == "redis" and "recovered_s" not in faults[-1]:
                    redis_back_at = time.monotonic() + a.redis_down_s
            if time.monotonic() >= next_kill:
                next_kill += a.kill_every
        stdout, _ = p.communicate()
        stored, twice = duplicates(url, name) if p.returncode == 0 else (None, None)
    finally:
        server.stop()
    if p.returncode != 0:
        return {"name": name, "returncode": p.returncode, "faults": faults, "sigterm": term}
    s = json.loads(stdout.strip().splitlines()[-1])
    by_kind = {k: [round(f["recovered_s"], 1) for f in faults if f["kind"] == k and "recovered_s" in f] for k in KINDS}
    return {"name": name, "wall_s": time.monotonic() - t0, "target_steps": a.steps, "env_steps": s["env_steps"],
            "stored_in_replay": stored, "stored_twice": twice, "steps_lost": max(0, a.steps - s["env_steps"]),
            "steps_duplicated": max(0, s["env_steps"] - a.steps), "faults": len(faults),
            "restarts": s.get("restarts"), "recovery_s": by_kind,
            "unrecovered": [f["kind"] for f in faults if "recovered_s" not in f],
            "sigterm": {k: v for k, v in term.items() if k != "t"}, "rss": rss.report(),
            "eval_return_mean": s["eval_return_mean"], "updates": s["updates"], "weights_version": s["weights_version"]}


def kill_one(name: str, driver_pid: int, server, sd: Path, steps: float, t0: float) -> list[dict]:
    """SIGKILL a random process of run `name` (an actor, its learner or its redis-server); the fault's record."""
    kind = random.choice(KINDS)
    if kind == "redis":
        pid = server.pid
    else:
        found = ray_workers(b"ray::ActorWorker" if kind == "actor" else b"ray::LearnerActor", name)
        pid = random.choice(found) if found else None
    if pid is None:
        return []
    before = metric(sd, "ami_driver_restarts_total", process=kind) or 0.0
    if kind == "redis":
        server.kill()
    else:
        os.kill(pid, signal.SIGKILL)
    print(f"[{name}] {time.monotonic() - t0:7.1f}s SIGKILL {kind} (pid {pid})", flush=True)
    return [{"kind": kind, "t": time.monotonic(), "at_s": time.monotonic() - t0, "count_before": before,
             "steps_before": steps}]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="Pendulum-v1")
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kill-every", type=float, default=180.0, help="seconds between random kills")
    ap.add_argument("--redis-down-s", type=float, default=2.0, help="seconds a killed redis-server stays down")
    ap.add_argument("--sigterm-at", type=float, default=0.5,
                    help="SIGTERM the chaos run's driver at this share of --steps, then --resume it (0: never)")
    ap.add_argument("--parallel", action="store_true", help="run the undisturbed and the chaos run at once")
    ap.add_argument("--runs", default="undisturbed,chaos", choices=("undisturbed,chaos", "chaos"),
                    help="'chaos' alone gives the faulted run the whole machine")
    ap.add_argument("--out", default="")
    ap.add_argument("overrides", nargs="*", metavar="key.path=value")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))  # `ami` of this checkout (its replay codec and redis-server helper)
    random.seed(a.seed)
    out = Path(a.out or tempfile.mkdtemp(prefix="ami-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(n, n == "chaos") for n in a.runs.split(",")]
    with ThreadPoolExecutor(2 if a.parallel else 1) as ex:
        results = list(ex.map(lambda j: one_run(j[0], a, out, j[1]), jobs))
    print(json.dumps(results, indent=1))
    (out / "soak.json").write_text(json.dumps(results, indent=1))
    return 0 if all("env_steps" in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
