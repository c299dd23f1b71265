"""`ami` CLI: bad input gives one line and exit 2 with nothing written; the inline backend honours the run
directory contract, and eval/report/resume read it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ami.actors.runner import runner_seed
from ami.agent.config import AgentConfig
from ami.cluster import inline
from ami.cluster.cli import main
from ami.cluster.config import apply, build, load_yaml, parse_override
from ami.cluster.rundir import SUMMARY_KEYS
from ami.cluster.services import redis_url

AMI = [sys.executable, "-m", "ami.cluster.cli"]


def _ami(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*AMI, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"})


BAD_ARGS = [
    ["train", "--env", "NoSuchEnv-v9", "--steps", "10"],
    ["train", "--steps", "ten"],
    ["train", "--bogus-flag"],
    ["train", "agent.planner.no_such_key=3"],
    ["train", "run.steps=-5"],
    ["train", "agent.optim.autocast=fp8"],
    ["train", "run.env_kwargs={no_such_argument: 1}"],
    ["train", "run.action_repeat=0"],
    ["train", "run.torch_threads=-1"],
    ["train", "agent.belief=maybe"],
    ["train", "--env", "ami/TwoRooms-v0", "agent.belief=on"],
    ["train", "agent.planner.kind=nope"],  # checked when the config resolves, not at the first plan
    ["train", "agent.hierarchy.enabled=true"],  # level 2 needs a goal task
    ["train", "runner.num_envs=2"],  # the runtime's to assign (run.envs_per_actor): no user key
    ["train", "--env", "dm_control/no_such-task-v0"],
    ["train", "--env", "no_such_module_here:Pendulum-v1"],
    ["train", "--config", "missing.yaml"],
    ["train", "--config", "bad.yaml"],
]


def _one_error_line(stderr: str) -> None:
    lines = [s for s in stderr.splitlines() if s.strip()]
    assert len(lines) == 1 and lines[0].startswith("ami: error:"), stderr


@pytest.mark.parametrize("args", BAD_ARGS)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, args: list[str], capfd,
                                                            monkeypatch) -> None:
    """In this process (a process per case cost ~1.7 s of imports each); capfd also sees what C code writes to
    fd 2. The exit status of a real process is the next test's."""
    (tmp_path / "bad.yaml").write_text("run: {steps: [1, 2\n")
    monkeypatch.chdir(tmp_path)
    for var in ("AMI_REDIS_URL", "RAY_ADDRESS", "AMI_PROMETHEUS_SD_DIR"):
        monkeypatch.delenv(var, raising=False)
    try:
        code = main([*args, "--run-dir", "out"])
    except SystemExit as e:  # argparse's errors
        code = e.code
    assert code == 2, capfd.readouterr().err
    _one_error_line(capfd.readouterr().err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args", [BAD_ARGS[2], BAD_ARGS[-1]])  # an argparse error and a ConfigError
def test_the_ami_process_exits_2_with_one_line_on_bad_input(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "bad.yaml").write_text("run: {steps: [1, 2\n")
    res = _ami(*args, "--run-dir", "out", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    _one_error_line(res.stderr)
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


TINY_MODEL = ["agent.world_model.hidden=32", "agent.encoder.hidden=32", "agent.planner.samples=16",
              "agent.planner.iterations=1"]
TINY = ["--backend", "inline", "--env", "Pendulum-v1", "--seed", "3", "--no-progress", "run.eval_every=300",
        "run.eval_episodes=2",
        "run.log_every=150", "learner.warmup_steps=150", "learner.batch_size=32", "learner.snapshot_every=20",
        "learner.checkpoint_every=100", *TINY_MODEL]


def test_inline_run_directory_eval_report_and_resume(tmp_path: Path, capsys, monkeypatch) -> None:
    run = tmp_path / "run"
    torch.set_num_threads(1)
    seeds = []  # the envs' seed of each run: a resumed run must not replay the opening episodes
    real_runner = inline.EpisodeRunner
    monkeypatch.setattr(inline, "EpisodeRunner", lambda *a, **k: seeds.append(a[4].seed) or real_runner(*a, **k))
    assert main(["train", "--steps", "450", "--run-dir", str(run), *TINY]) == 0
    assert torch.get_num_threads() == inline.usable_cores()  # run.torch_threads=0: the inline process uses every core
    summary = json.loads((run / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(summary)
    assert summary["env_steps"] == 450 and summary["env_id"] == "Pendulum-v1" and summary["seed"] == 3
    assert summary["updates"] == 450 - 150 + 1 and summary["weights_version"] == summary["updates"] // 20
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert all({"env_steps", "updates", "wall_seconds"} <= set(m) for m in lines)
    evals = [m for m in lines if "eval_return_mean" in m]
    assert [m["env_steps"] for m in evals] == [300, 450] and all("eval_return_std" in m for m in evals)
    cfg = (run / "config.yaml").read_text()
    assert "planner:" in cfg and "latent_dim:" in cfg  # the fully resolved agent config
    assert (run / "checkpoints" / "latest.pt").exists()

    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["env_id"] == "Pendulum-v1" and out["episodes"] == 2 and out["eval_return_mean"] < 0

    assert main(["report", str(run)]) == 0
    assert (run / "returns.png").stat().st_size > 1000 and (run / "losses.png").exists()

    assert main(["train", "--resume", str(run), "--steps", "600", "--no-progress"]) == 0
    resumed = json.loads((run / "summary.json").read_text())
    assert resumed["env_steps"] == 600
    assert resumed["updates"] == summary["updates"] + 150
    assert resumed["weights_version"] > summary["weights_version"]
    assert seeds == [3, runner_seed(3, 0, 450)] and seeds[1] != 3
    logged = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines() if '"replay_size"' in s]
    assert logged[-1]["env_steps"] == 600 and logged[-1]["replay_size"] > 450  # trained on the 450 it had too

    run_ckpt = run / "checkpoints"
    (run_ckpt / "latest.pt").write_bytes((run_ckpt / "latest.pt").read_bytes()[:100])  # damaged on disk
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "1"]) == 0  # from previous.pt, the one the resume replaced
    assert "using previous.pt" in capsys.readouterr().err


def test_existing_run_directory_is_not_overwritten(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(b"x")
    res = _ami("train", "--steps", "10", "--run-dir", str(run), cwd=tmp_path)
    assert res.returncode == 2 and "--resume" in res.stderr
    assert (run / "checkpoints" / "latest.pt").read_bytes() == b"x"


def test_inline_backend_runs_where_ray_cannot_be_imported(tmp_path: Path) -> None:
    # the GPU machines have no Ray: `ami train --backend inline` (and eval) must never import it
    root = Path(__file__).resolve().parents[2]
    code = ("import sys; sys.modules['ray'] = None\n"  # any `import ray` now raises ImportError
            f"TINY_MODEL = {TINY_MODEL!r}\n"
            "from ami.cluster.cli import main\n"
            "rc = main(['train', '--backend', 'inline', '--env', 'Pendulum-v1', '--steps', '300', '--run-dir', 'r',\n"
            "           '--no-progress', 'learner.warmup_steps=200', 'run.eval_episodes=1', *TINY_MODEL])\n"
            "assert 'ray' not in sys.modules or sys.modules['ray'] is None\n"
            "sys.exit(rc or main(['eval', 'r', '--episodes', '1']))\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["env_steps"] == 300 and summary["updates"] >= 100 and summary["backend"] == "inline"


def test_yaml_words_stay_strings_where_yaml_1_1_would_read_booleans(tmp_path: Path) -> None:
    assert parse_override("agent.belief=on") == {"agent": {"belief": "on"}}
    assert parse_override("agent.belief=off")["agent"]["belief"] == "off"
    assert parse_override("agent.compile=true") == {"agent": {"compile": True}}
    (tmp_path / "c.yaml").write_text("agent: {belief: on, compile: no}\nrun: {steps: 10}\n")
    cfg = build([load_yaml(tmp_path / "c.yaml")])
    assert cfg.agent == {"belief": "on", "compile": "no"} and cfg.run.steps == 10
    assert apply(AgentConfig(), cfg.agent).compile is False  # bool keys still take yes/no/on/off


def test_resume_reads_a_config_yaml_of_an_older_commit(tmp_path: Path) -> None:
    """A run directory written before keys were removed still resumes: each removed key is dropped, all of them
    named on one warning line, and the run goes on with what the file says."""
    run = tmp_path / "old"
    run.mkdir()
    old = (Path(__file__).parents[1] / "runtime" / "data" / "config-9f86516.yaml").read_text()
    (run / "config.yaml").write_text(old)
    res = _ami("train", "--resume", str(run), "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    warnings = [s for s in res.stderr.splitlines() if s.startswith("ami: warning:")]
    assert len(warnings) == 1, res.stderr
    for key in ("runner.num_envs", "runner.seed", "runner.actor_id", "runner.first_episode", "agent.optim.batch_size"):
        assert key in warnings[0]
    s = json.loads((run / "summary.json").read_text())
    assert s["env_steps"] == 300 and s["seed"] == 3 and s["backend"] == "inline"
    assert (run / "config.yaml").read_text() == old  # a resumed run keeps its own record


def test_a_step_count_no_multiple_of_the_envs_ends_below_it_inline_as_on_ray(tmp_path: Path) -> None:
    """--steps 31 with 2 envs per actor: 30 env steps, as a Ray run's budget claims grant (learner/pacing.py)."""
    run = tmp_path / "odd"
    assert main(["train", *TINY, "--steps", "31", "--envs-per-actor", "2", "--run-dir", str(run),
                 "learner.warmup_steps=1000", "run.eval_episodes=1"]) == 0
    assert json.loads((run / "summary.json").read_text())["env_steps"] == 30


def test_sigterm_stops_an_inline_run_as_ctrl_c_does(tmp_path: Path) -> None:
    """SIGTERM (Kubernetes, `ray job stop`): steps flushed, a final checkpoint, summary.json marked interrupted,
    exit 0, the discovery file removed. Without a handler Python dies at once (status -15). Short episodes and no
    updates keep it quick: only the signal's path is under test."""
    run, sd = tmp_path / "run", tmp_path / "sd"
    p = subprocess.Popen([*AMI, "train", *TINY, "--steps", "1000000", "--run-dir", str(run), "run.log_every=20",
                          "learner.warmup_steps=1000000", "run.eval_episodes=1", "run.torch_threads=1",
                          "run.env_kwargs={max_episode_steps: 20}"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin",
                              "AMI_PROMETHEUS_SD_DIR": str(sd)})
    try:
        deadline = time.monotonic() + 60
        while not (run / "metrics.jsonl").exists():  # the driver loop is running
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.1)
        assert list(sd.glob("*.json"))
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err[-2000:]
    s = json.loads((run / "summary.json").read_text())
    assert s["interrupted"] and s["env_steps"] == json.loads(out.strip().splitlines()[-1])["env_steps"] >= 20
    assert (run / "checkpoints" / "latest.pt").exists() and list(sd.glob("*.json")) == []


SECRET = "pw-7d1e0c"


def test_the_redis_url_comes_from_the_flag_a_0600_file_or_the_environment(tmp_path: Path, capsys) -> None:
    f = tmp_path / "url"
    f.write_text(f"redis://ami:{SECRET}@h:1/0\n")
    f.chmod(0o600)
    assert redis_url(None, str(f), {}) == f"redis://ami:{SECRET}@h:1/0"
    assert redis_url(None, None, {"AMI_REDIS_URL": "redis://e:1/0"}) == "redis://e:1/0"
    assert redis_url("redis://flag:1/0", None, {"AMI_REDIS_URL": "redis://e:1/0"}) == "redis://flag:1/0"
    assert redis_url(None, None, {}) is None and capsys.readouterr().err == ""
    assert redis_url(f"redis://ami:{SECRET}@h:1/0", None, {})  # works, but says where a password belongs
    err = capsys.readouterr().err
    assert err.startswith("ami: warning:") and "AMI_REDIS_URL" in err and SECRET not in err


@pytest.mark.parametrize("case", ["group-readable", "world-readable", "both flags", "missing", "two lines",
                                  "env unreachable"])
def test_a_bad_redis_url_source_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, capsys, monkeypatch,
                                                                        case: str) -> None:
    f = tmp_path / "url"
    f.write_text(f"redis://ami:{SECRET}@127.0.0.1:1/0\n" + ("redis://x:1/0\n" if case == "two lines" else ""))
    f.chmod({"group-readable": 0o640, "world-readable": 0o604}.get(case, 0o600))
    args = {"both flags": ["--redis-url", "redis://127.0.0.1:1/0", "--redis-url-file", str(f)],
            "missing": ["--redis-url-file", str(tmp_path / "nope")], "env unreachable": []}.get(
        case, ["--redis-url-file", str(f)])
    if case == "env unreachable":
        monkeypatch.setenv("AMI_REDIS_URL", f"redis://ami:{SECRET}@127.0.0.1:1/0")
    assert main(["train", "--backend", "ray", "--steps", "10", "--run-dir", str(tmp_path / "out"), *args]) == 2
    lines = [s for s in capsys.readouterr().err.splitlines() if s.strip()]
    assert len(lines) == 1 and lines[0].startswith("ami: error:") and SECRET not in lines[0], lines
    assert not (tmp_path / "out").exists()
    if case.endswith("readable"):
        assert "chmod 600" in lines[0]
