"""A real Prometheus with the shipped scrape config finds every process through Discovery (file_sd and http_sd),
scrapes them, and every dashboard expression returns data.

The processes are those of a real `ami train --backend ray` (driver, learner, two actors, one added by
`ami scale`) attached to the session's Ray cluster, with the driver's discovery file in a temporary directory
(AMI_PROMETHEUS_SD_DIR) and its http_sd endpoint on --metrics-port.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from ami.cluster.cli import main
from tests.runtime.conftest import AMI, TINY, tagged_env
from tests.util import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
SUBST = {"$env_id": ".*", "$actor_id": ".*", "$__rate_interval": "10s"}

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="prometheus not installed (apt-get install -y prometheus)")



def api(base: str, path: str, **params) -> dict:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
    with urllib.request.urlopen(url, timeout=5) as r:
        out = json.loads(r.read())
    assert out["status"] == "success", out
    return out["data"]



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


@contextlib.contextmanager
def stack_prometheus(tmp: Path, config: Path):
    """A real prometheus with `config`, on a free loopback port, until the block ends; yields its base URL."""
    port = free_port()
    prom = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "prometheus.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            try:
                return urllib.request.urlopen(f"{base}/-/ready", timeout=1).status == 200
            except OSError:
                assert prom.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
                return False

        wait_for(ready, 20, "prometheus ready")
        yield base
    finally:
        prom.terminate()
        prom.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(ray_cluster, redis_server, tmp_path_factory):
    """Prometheus (shipped config) scraping a real 2-actor `ami train --backend ray` attached to the session's
    cluster; the run is stopped with SIGINT (Ctrl-C) when the module's tests are done."""
    tmp = tmp_path_factory.mktemp("prom")
    sd, run, driver_port = tmp / "sd", tmp / "run", free_port()
    env = {**tagged_env()[0], "AMI_PROMETHEUS_SD_DIR": str(sd)}
    train = subprocess.Popen([*AMI, "train", "--backend", "ray", "--actors", "2", "--steps", "1000000",
                              "--run-dir", str(run), "--ray-address", ray_cluster.address, "--redis-url",
                              redis_server.url, "--metrics-port", str(driver_port), *TINY, "runtime.poll_s=0.2"],
                             cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=open(tmp / "train.log", "w"),
                             text=True)
    try:
        with stack_prometheus(tmp, scrape_config(tmp, sd, driver_port)) as base:
            yield {"base": base, "run": run, "sd": sd, "train": train, "tmp": tmp}
    finally:
        if train.poll() is None:
            train.send_signal(signal.SIGINT)
            try:
                train.wait(timeout=90)
            except subprocess.TimeoutExpired:
                train.kill()


def expected_keys(sd: Path) -> set[str]:
    """role/actor_id of the targets in the run's discovery file."""
    out = set()
    for f in sd.glob("*.json"):
        for g in json.loads(f.read_text()):
            out.add(f"{g['labels']['role']}{g['labels'].get('actor_id', '')}")
    return out


def role_health(base: str, job: str) -> dict[str, str]:
    """role+actor_id -> health of the active targets of `job`."""
    return {f"{t['labels'].get('role')}{t['labels'].get('actor_id', '')}": t["health"]
            for t in api(base, "targets", state="active")["activeTargets"] if t["labels"]["job"] == job}


ALL = {"driver", "learner", "actor0", "actor1"}


@pytest.mark.parametrize("job", ["ami", "ami-http"])
def test_every_process_of_a_real_run_is_an_up_target(stack, job: str) -> None:
    got = wait_for(lambda: (lambda h: h if ALL <= set(h) and {h[k] for k in ALL} == {"up"} else None)(
        role_health(stack["base"], job)), 60, f"{job}: driver, learner and both actors up")
    assert {k for k in got if k.startswith("actor")} == {"actor0", "actor1"}
    assert expected_keys(stack["sd"]) == ALL  # file_sd: exactly the live processes


def test_every_dashboard_expression_returns_series(stack) -> None:
    sys.path.insert(0, str(ROOT / "deploy/grafana"))
    import generate

    base = stack["base"]
    wait_for(lambda: ALL <= {k for k, v in role_health(base, "ami").items() if v == "up"}, 60, "targets up")
    missing: list[str] = []
    deadline = time.monotonic() + 60  # long enough for warmup, updates, snapshots and the first evaluation
    for uid, (title, panels) in generate.DASHBOARDS.items():
        if uid in generate.GOAL_ONLY:  # a Pendulum run has no goals and no level 2 (test_metrics.py checks those)
            continue
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


def test_discovery_follows_actors_added_and_gone_then_ctrl_c_leaves_nothing(stack) -> None:
    base, run, train = stack["base"], stack["run"], stack["train"]
    assert main(["scale", str(run), "--actors", "3"]) == 0
    wait_for(lambda: role_health(base, "ami").get("actor2") == "up", 60, "added actor scraped")
    wait_for(lambda: role_health(base, "ami-http").get("actor2") == "up", 30, "added actor via http_sd")
    q = 'ami_actor_env_steps_total{actor_id="2", job="ami"}'
    wait_for(lambda: api(base, "query", query=q)["result"], 30, "actor 2 series")
    assert main(["scale", str(run), "--actors", "2"]) == 0
    wait_for(lambda: "actor2" not in role_health(base, "ami"), 30, "scaled-away actor dropped")
    train.send_signal(signal.SIGINT)
    out, _ = train.communicate(timeout=90)
    assert train.returncode == 0, (stack["tmp"] / "train.log").read_text()[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["interrupted"]
    assert list(stack["sd"].glob("*.json")) == []  # the run's discovery file went with it
    wait_for(lambda: not role_health(base, "ami"), 30, "targets gone")
