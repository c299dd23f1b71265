"""The inline backend reports like a Ray run: a real Prometheus with the shipped config finds its driver, actor 0
and learner through the discovery file and /sd, scrapes the same series, and Ctrl-C takes the targets away."""

from __future__ import annotations

import signal
import subprocess
import urllib.request

from tests.observability.test_prometheus import api, role_health, scrape_config, stack_prometheus
from tests.runtime.conftest import AMI, TINY, tagged_env
from tests.util import free_port, wait_for

ROLES = {"driver", "actor0", "learner"}


def value(base: str, expr: str) -> float:
    res = api(base, "query", query=expr)["result"]
    return float(res[0]["value"][1]) if res else 0.0


def test_inline_run_exports_driver_actor_and_learner_metrics(tmp_path) -> None:
    sd, run, port = tmp_path / "sd", tmp_path / "run", free_port()
    env = {**tagged_env()[0], "AMI_PROMETHEUS_SD_DIR": str(sd)}
    train = subprocess.Popen([*AMI, "train", "--backend", "inline", "--steps", "1000000", "--run-dir", str(run),
                              "--metrics-port", str(port), *TINY], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "train.log", "w"))
    try:
        with stack_prometheus(tmp_path, scrape_config(tmp_path, sd, port)) as base:
            for job in ("ami", "ami-http"):  # file_sd and http_sd (/sd on --metrics-port)
                wait_for(lambda job=job: ROLES <= {k for k, v in role_health(base, job).items() if v == "up"}, 60,
                         f"{job}: driver, actor 0 and learner up")
            exprs = ('ami_learner_updates_total{job="ami"}', 'ami_learner_loss{job="ami",term="prediction"}',
                     'ami_actor_env_steps_total{job="ami",actor_id="0",env_id="Pendulum-v1"}',
                     'ami_actor_planning_latency_seconds_count{job="ami"}', 'ami_actor_segments_total{job="ami"}',
                     'ami_driver_env_steps{job="ami"}', 'ami_replay_size_transitions{job="ami"}')
            # every role's endpoint is scraped on its own clock: wait until each has reported past the warmup
            wait_for(lambda: all(value(base, e) > 0 for e in exprs)
                     and value(base, 'ami_learner_weights_version{job="ami"}') >= 1, 60, "every role reporting")
            train.send_signal(signal.SIGINT)
            assert train.wait(timeout=60) == 0, (tmp_path / "train.log").read_text()[-2000:]
            assert list(sd.glob("*.json")) == []  # the discovery file goes with the run
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
                raise AssertionError("the driver's endpoint outlived the run")
            except OSError:
                pass
    finally:
        if train.poll() is None:
            train.kill()
