"""One driver loop, two backends: the same short run through inline and through Ray ends with the same counters
(env steps, updates, episodes), the same summary.json keys (Ray adds exactly its RAY_KEYS) and the same checkpoint,
evaluation and log marks; also with 3 envs per actor, where updates advance 3 at a time (an inline run used to
write no periodic checkpoint there). Ray's evaluation is asynchronous, so marks and line counts are compared,
not values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ami.cluster.cli import main
from ami.cluster.ray_figures import RAY_KEYS
from tests.runtime.conftest import TINY


def _run(tmp: Path, backend: str, envs: int, steps: int, redis_url: str) -> tuple[dict, list[dict]]:
    run = tmp / f"{backend}-{envs}"
    extra = ["--redis-url", redis_url, "runtime.max_update_lag=20"] if backend == "ray" else []
    rc = main(["train", "--backend", backend, "--steps", str(steps), "--envs-per-actor", str(envs), "--run-dir",
               str(run), *extra, *TINY])
    assert rc == 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return json.loads((run / "summary.json").read_text()), lines


@pytest.mark.parametrize("envs, steps", [(1, 300), (3, 600)])
def test_inline_and_ray_runs_end_alike(ray_cluster, redis_server, tmp_path: Path, envs: int, steps: int) -> None:
    inline, i_lines = _run(tmp_path, "inline", envs, steps, redis_server.url)
    ray, r_lines = _run(tmp_path, "ray", envs, steps, redis_server.url)
    for key in ("env_steps", "updates", "episodes", "weights_version", "checkpoint_marks", "sim_steps"):
        assert inline[key] == ray[key], key
    assert inline["env_steps"] == steps and inline["updates"] == steps - 150 + 1  # warm-up 150, 1 update per step
    assert inline["checkpoint_marks"] == inline["updates"] // 50  # learner.checkpoint_every=50
    assert set(ray) - set(inline) == set(RAY_KEYS) and set(inline) <= set(ray)
    evals = [[m for m in lines if "eval_return_mean" in m] for lines in (i_lines, r_lines)]
    logs = [[m for m in lines if "eval_return_mean" not in m] for lines in (i_lines, r_lines)]
    assert len(evals[0]) == len(evals[1]) == steps // 300 + (steps % 300 > 0)  # run.eval_every=300, + the final
    assert [m["env_steps"] // 300 for m in evals[0]] == [m["env_steps"] // 300 for m in evals[1]]
    assert len(logs[0]) == len(logs[1]) == steps // 150  # run.log_every=150
    assert [m["env_steps"] // 150 for m in logs[0]] == [m["env_steps"] // 150 for m in logs[1]]
    assert set(logs[1][-1]) - set(logs[0][-1]) == {"policy_lag_mean", "actors"}
