"""A real Prometheus with the shipped scrape config finds every process through Discovery (file_sd and http_sd),
scrapes them, and every dashboard expression returns data.

The processes are stand-ins (exporter_proc.py) that record values through the role helpers of cluster/metrics.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from cluster.exporter import Discovery, DiscoveryConfig, ExporterConfig, Target, start_process_metrics

ROOT = Path(__file__).resolve().parents[2]
ENV = "Pendulum-v1"
SUBST = {"$env_id": ".*", "$actor_id": ".*", "$__rate_interval": "10s"}

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="prometheus not installed (apt-get install -y prometheus)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, path: str, **params) -> dict:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
    with urllib.request.urlopen(url, timeout=5) as r:
        out = json.loads(r.read())
    assert out["status"] == "success", out
    return out["data"]


def wait_for(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


class Proc:
    """A stand-in process; `stop()` closes its stdin, then terminates it if needed."""

    def __init__(self, role: str, actor_id: int | None = None):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.p = subprocess.Popen([sys.executable, str(Path(__file__).with_name("exporter_proc.py")), role, ENV,
                                   "-" if actor_id is None else str(actor_id)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.target = Target.from_dict(json.loads(self.p.stdout.readline()))

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def scrape_config(tmp: Path, sd_dir: Path, driver_port: int) -> Path:
    """The shipped prometheus.yml with 1 s intervals, its file_sd paths moved into tmp, plus an http_sd job."""
    cfg = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    jobs["ami"]["file_sd_configs"] = [{"files": [str(sd_dir / "*.json")], "refresh_interval": "1s"}]
    jobs["ray"]["file_sd_configs"] = [{"files": [str(tmp / "ray_sd.json")]}]
    http = yaml.safe_load((ROOT / "deploy/prometheus/prometheus-k8s.yml").read_text())["scrape_configs"][0]
    http.update(job_name="ami-http", http_sd_configs=[{"url": f"http://127.0.0.1:{driver_port}/sd",
                                                        "refresh_interval": "1s"}])
    cfg["scrape_configs"].append(http)
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prom")
    disc = Discovery("test-run", DiscoveryConfig(directory=str(tmp / "sd")))
    driver = start_process_metrics("driver", ENV, cfg=ExporterConfig(bind_host="127.0.0.1"),
                                   routes={"/sd": disc.http_sd})
    procs: dict[str, Proc] = {}
    prom = None
    try:
        disc.set("driver", driver.target)
        for key, role, aid in (("actor-0", "actor", 0), ("actor-1", "actor", 1), ("learner", "learner", None)):
            procs[key] = Proc(role, aid)
            disc.set(key, procs[key].target)
        driver.driver.progress(env_steps=1000, target_steps=5000, episodes=5, updates_per_s=12.5, live_actors=2)
        driver.driver.evaluation({"eval_return_mean": -900.0, "eval_return_std": 50.0})
        driver.driver.discovery(len(disc))
        driver.replay.observe_server({"inserted_transitions": 1000, "sampled_windows": 4000, "size_transitions": 900,
                                      "capacity_transitions": 100_000, "evicted_transitions": 100})
        port = free_port()
        prom = subprocess.Popen(["prometheus", f"--config.file={scrape_config(tmp, tmp / 'sd', driver.target.port)}",
                                 f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=open(tmp / "prometheus.log", "w"))
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return urllib.request.urlopen(f"{base}/-/ready", timeout=1).status == 200
            except OSError:
                assert prom.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
                return False

        wait_for(ready, 20, "prometheus ready")
        yield {"base": base, "disc": disc, "driver": driver, "procs": procs}
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=10)
        for p in procs.values():
            p.stop()
        driver.close()
        disc.close()


def up_targets(base: str, job: str) -> dict[str, str]:
    """scrapeUrl host:port -> health of the active targets of `job`."""
    return {t["labels"]["instance"]: t["health"] for t in api(base, "targets", state="active")["activeTargets"]
            if t["labels"]["job"] == job}


@pytest.mark.parametrize("job", ["ami", "ami-http"])
def test_every_process_is_an_up_target(stack, job: str) -> None:
    want = {t.address for t in [stack["driver"].target, *(p.target for p in stack["procs"].values())]}
    got = wait_for(lambda: (lambda u: u if set(u) == want and set(u.values()) == {"up"} else None)(
        up_targets(stack["base"], job)), 20, f"{job} targets up")
    assert set(got) == want
    roles = {t["labels"].get("role") for t in api(stack["base"], "targets", state="active")["activeTargets"]
             if t["labels"]["job"] == job}
    assert roles == {"driver", "actor", "learner"}


def test_every_dashboard_expression_returns_series(stack) -> None:
    sys.path.insert(0, str(ROOT / "deploy/grafana"))
    import generate

    base = stack["base"]
    wait_for(lambda: set(up_targets(base, "ami").values()) == {"up"}, 20, "targets up")
    missing: list[str] = []
    deadline = time.monotonic() + 20
    for uid, (title, panels) in generate.DASHBOARDS.items():
        dash = generate.dashboard(uid, title, panels)
        for p in dash["panels"]:
            for t in p["targets"]:
                expr = t["expr"]
                for k, v in SUBST.items():
                    expr = expr.replace(k, v)
                while not api(base, "query", query=expr)["result"]:
                    if time.monotonic() > deadline:
                        missing.append(f"{uid} / {p['title']}: {expr}")
                        break
                    time.sleep(0.5)
        for v in dash["templating"]["list"]:
            if v["type"] == "query":  # label_values(METRIC{SEL}, LABEL)
                metric, label = v["definition"][len("label_values("):-1].rsplit(", ", 1)
                for k, val in SUBST.items():
                    metric = metric.replace(k, val)
                if not any(label in s for s in api(base, "series", **{"match[]": metric})):
                    missing.append(f"{uid} variable {v['name']}: {v['definition']}")
    assert not missing, "\n".join(missing)


def test_discovery_follows_actors_added_and_gone(stack) -> None:
    base, disc = stack["base"], stack["disc"]
    new = Proc("actor", 7)
    try:
        disc.set("actor-7", new.target)
        wait_for(lambda: up_targets(base, "ami").get(new.target.address) == "up", 15, "new actor scraped")
        wait_for(lambda: up_targets(base, "ami-http").get(new.target.address) == "up", 15, "new actor via http_sd")
        q = 'ami_actor_env_steps_total{actor_id="7", job="ami"}'
        wait_for(lambda: api(base, "query", query=q)["result"], 15, "actor 7 series")
    finally:
        new.stop()
        disc.discard("actor-7")
    wait_for(lambda: new.target.address not in up_targets(base, "ami"), 15, "stopped actor dropped")
