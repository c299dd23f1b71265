"""`ami pretrain` (learning by watching) and `ami train --init-from`: observation-only data from an .npz directory or
a Minari dataset trains the world model, a run started from it begins with those weights on both backends, and
bad input exits 2 with one line."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from ami.cluster.cli import main
from ami.envs import register_envs

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["learner.batch_size=32", "run.plan_evals=64"]


def _npz_episodes(out: Path, env_id: str = "Pendulum-v1", n: int = 6, seed: int = 0, key: str = "") -> Path:
    """Random-policy episodes as the README's .npz format (with an `actions` array pretraining must ignore);
    `key`: the entry of Dict observations to keep (a goal env's state)."""
    register_envs()
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make(env_id)
    env.action_space.seed(seed)
    for e in range(n):
        obs, _ = env.reset(seed=seed + e)
        seen, done = [obs], False
        while not done:
            obs, _, term, trunc, _ = env.step(env.action_space.sample())
            seen.append(obs)
            done = term or trunc
        seen = [o[key] for o in seen] if key else seen
        np.savez(out / f"ep{e}.npz", observations=np.asarray(seen), actions=np.zeros((len(seen) - 1, 1)))
    return out


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)["agent"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("pretrain")
    run = base / "pre"
    assert main(["pretrain", "--data", str(_npz_episodes(base / "data")), "--env", "Pendulum-v1", "--updates", "400",
                 "--run-dir", str(run), "--no-progress", "run.log_every=200", *SMALL]) == 0
    return run


def test_pretraining_learns_the_dynamics_with_latent_actions(pretrained: Path) -> None:
    s = json.loads((pretrained / "summary.json").read_text())
    assert s["kind"] == "pretrain" and s["updates"] == 400 and s["episodes"] == 6 and s["transitions"] == 1200
    lines = [json.loads(x) for x in (pretrained / "metrics.jsonl").read_text().splitlines()]
    assert [x["updates"] for x in lines] == [200, 400]
    assert lines[-1]["loss_prediction"] < 0.5 * lines[0]["loss_prediction"], lines
    cfg = yaml.safe_load((pretrained / "config.yaml").read_text())
    assert cfg["agent"]["world_model"]["latent_action_dim"] == 1  # one per action dimension
    state = _state(pretrained / "checkpoints" / "pretrained.pt")
    assert any(k.startswith("world_model.action_posterior.") for k in state)
    assert any(k.startswith("world_model.action_adapter.") for k in state)
    assert not (pretrained / "checkpoints" / "latest.pt").exists()


@pytest.mark.parametrize("backend", ["inline", "ray"])
def test_a_run_started_from_it_begins_with_its_world_model(request, pretrained: Path, tmp_path: Path,
                                                           backend: str) -> None:
    """No update happens in these 60 steps (warm-up 1000), so the run's final checkpoint holds the weights it
    started from: the world model is the pretrained one, the reward-side modules are new (another seed)."""
    run = tmp_path / "run"
    args = ["train", "--env", "Pendulum-v1", "--backend", backend, "--steps", "60", "--seed", "1", "--init-from",
            str(pretrained),
            "--run-dir", str(run), "--no-progress", "learner.warmup_steps=1000", "run.eval_episodes=1", *SMALL]
    if backend == "ray":
        request.getfixturevalue("ray_cluster")
        args += ["--redis-url", request.getfixturevalue("redis_server").url]
    assert main(args) == 0
    start, got = _state(pretrained / "checkpoints" / "pretrained.pt"), _state(run / "checkpoints" / "latest.pt")
    wm = [k for k in start if k.startswith("world_model.")]
    assert wm and all(torch.equal(start[k], got[k]) for k in wm)
    assert not all(torch.equal(start[k], got[k]) for k in start if k.startswith("critic."))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["run"]["init_from"] == str(pretrained) and cfg["agent"]["world_model"]["latent_action_dim"] == 1


def test_a_resumed_run_needs_the_pretraining_run_no_more(pretrained: Path, tmp_path: Path) -> None:
    shutil.copytree(pretrained, tmp_path / "pre")
    run, common = tmp_path / "run", ["--backend", "inline", "--no-progress", "learner.warmup_steps=1000",
                                     "run.eval_episodes=1", *SMALL]
    assert main(["train", "--env", "Pendulum-v1", "--steps", "30", "--init-from", str(tmp_path / "pre"),
                 "--run-dir", str(run), *common]) == 0
    shutil.rmtree(tmp_path / "pre")  # its weights are in the run's checkpoint now
    assert main(["train", "--resume", str(run), "--steps", "60", *common]) == 0
    assert json.loads((run / "summary.json").read_text())["env_steps"] == 60


def test_a_goal_task_pretrains_on_the_state_part_of_its_observations(tmp_path: Path, capsys) -> None:
    """TwoRooms' observations are {'observation', 'goal'}: the data holds the state alone (the goal is no part of
    the dynamics), the world model that encodes states and goals learns from it, and a goal-reaching run starts
    from it; data with the goal glued on is refused with one line."""
    data, pre, run = _npz_episodes(tmp_path / "data", "ami/TwoRooms-v0", n=4, key="observation"), tmp_path / "pre", \
        tmp_path / "run"
    assert main(["pretrain", "--data", str(data), "--env", "ami/TwoRooms-v0", "--updates", "40", "--run-dir", str(pre),
                 "--no-progress", "run.log_every=20", *SMALL]) == 0
    lines = [json.loads(x) for x in (pre / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["loss_prediction"] < lines[0]["loss_prediction"], lines
    assert main(["train", "--env", "ami/TwoRooms-v0", "--backend", "inline", "--steps", "40", "--init-from", str(pre),
                 "--run-dir", str(run), "--no-progress", "learner.warmup_steps=1000", "run.eval_episodes=1",
                 *SMALL]) == 0
    start, got = _state(pre / "checkpoints" / "pretrained.pt"), _state(run / "checkpoints" / "latest.pt")
    wm = [k for k in start if k.startswith("world_model.encoder.")]
    assert wm and all(torch.equal(start[k], got[k]) for k in wm)  # the encoder of states and goals
    capsys.readouterr()
    glued = tmp_path / "glued"
    glued.mkdir()
    np.savez(glued / "e.npz", observations=np.zeros((30, 4), np.float32))  # state and goal side by side
    assert main(["pretrain", "--data", str(glued), "--env", "ami/TwoRooms-v0", "--updates", "5", "--run-dir",
                 str(tmp_path / "out"), "--no-progress"]) == 2
    err = [s for s in capsys.readouterr().err.splitlines() if s.strip()]
    assert len(err) == 1 and "state observations have (2,)" in err[0], err
    assert not (tmp_path / "out").exists()


def _align_error(agent, seed: int = 7) -> float:
    """Mean ||A(a) - E[q(u | s, s')]||^2 over held-out random-policy Pendulum steps."""
    env = gym.make("Pendulum-v1")
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    seen, acts = [obs], []
    for _ in range(400):
        acts.append(env.action_space.sample())
        obs, _, term, trunc, _ = env.step(acts[-1])
        seen.append(obs)
        if term or trunc:
            break
    wm = agent.world_model
    with torch.no_grad():
        s = wm.encode(torch.as_tensor(np.asarray(seen)))
        _, mu, _ = wm.infer_action(s[:-1], s[1:])
        return float((wm.action_adapter(agent.action.to_model(np.asarray(acts), "cpu")) - mu).pow(2).mean())


def test_interaction_updates_align_real_actions_with_the_latent_ones(pretrained: Path, tmp_path: Path) -> None:
    """The adapter starts untrained; 200 interaction updates map real actions onto the latent actions the
    pretrained inverse model sees (measured here: 0.20 -> 0.06 after 400 pretraining updates)."""
    from ami.cluster.evaluate import load_agent

    run = tmp_path / "run"
    assert main(["train", "--env", "Pendulum-v1", "--backend", "inline", "--steps", "250", "--init-from",
                 str(pretrained), "--run-dir", str(run), "--no-progress", "learner.warmup_steps=50",
                 "run.eval_every=1000", "run.eval_episodes=1", *SMALL]) == 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("loss_align" in x for x in lines if "loss_prediction" in x)
    before = _align_error(load_agent(pretrained / "checkpoints" / "pretrained.pt")[0])
    after = _align_error(load_agent(run)[0])
    assert after < 0.75 * before, (before, after)


def test_a_minari_dataset_by_id_and_by_directory(tmp_path: Path, capsys) -> None:
    pytest.importorskip("minari")
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / "minari"), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "passive_data.py"), "--episodes", "3", "--minari",
                    "ami/pendulum-random-v0"], env=env, check=True, capture_output=True, timeout=120)
    os.environ["MINARI_DATASETS_PATH"] = env["MINARI_DATASETS_PATH"]
    try:
        for i, data in enumerate(["ami/pendulum-random-v0", str(tmp_path / "minari" / "ami" / "pendulum-random-v0")]):
            assert main(["pretrain", "--data", data, "--env", "Pendulum-v1", "--updates", "5", "--run-dir",
                         str(tmp_path / f"run{i}"), "--no-progress", *SMALL]) == 0
            s = json.loads((tmp_path / f"run{i}" / "summary.json").read_text())
            assert s["episodes"] == 3 and s["transitions"] == 600
        # a goal env's Dict observations: the state key is read for its goal task, and nothing fits another env
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "passive_data.py"), "--env", "ami/TwoRooms-v0",
                        "--episodes", "2", "--minari", "ami/tworooms-random-v0"], env=env, check=True,
                       capture_output=True, timeout=120)
        assert main(["pretrain", "--data", "ami/tworooms-random-v0", "--env", "ami/TwoRooms-v0", "--updates", "5",
                     "--run-dir", str(tmp_path / "goal"), "--no-progress", *SMALL]) == 0
        assert json.loads((tmp_path / "goal" / "summary.json").read_text())["episodes"] == 2
        capsys.readouterr()
        assert main(["pretrain", "--data", "ami/tworooms-random-v0", "--env", "Pendulum-v1", "--updates", "5",
                     "--run-dir", str(tmp_path / "other"), "--no-progress"]) == 2
        err = [s for s in capsys.readouterr().err.splitlines() if s.strip()]
        assert len(err) == 1 and "Dict observations" in err[0], err
    finally:
        del os.environ["MINARI_DATASETS_PATH"]


def _bad_data(base: Path) -> dict[str, Path]:
    out = {"cartpole": _npz_episodes(base / "cartpole", "CartPole-v1", n=2)}
    (base / "noobs").mkdir()
    np.savez(base / "noobs" / "e.npz", frames=np.zeros((5, 3)))
    (base / "pickled").mkdir()
    np.save(base / "pickled" / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    os.rename(base / "pickled" / "x.npy", base / "pickled" / "e.npz")
    (base / "short").mkdir()
    np.savez(base / "short" / "e.npz", observations=np.zeros((1, 3), np.float32))
    return {**out, "noobs": base / "noobs", "pickled": base / "pickled", "short": base / "short"}


@pytest.mark.parametrize("case", ["missing", "cartpole", "noobs", "pickled", "short", "belief", "updates"])
def test_bad_pretraining_input_exits_2_with_one_line(tmp_path: Path, capsys, case: str) -> None:
    data = _bad_data(tmp_path)
    path = {"missing": tmp_path / "nowhere" / "data"}.get(case, data.get(case, data["cartpole"]))
    env = "Pendulum-v1" if case != "belief" else "CartPole-v1"
    extra = {"belief": ["agent.belief=on"], "updates": ["--updates", "0"]}.get(case, [])
    args = ["pretrain", "--data", str(path), "--env", env, "--updates", "5", "--run-dir", str(tmp_path / "out"),
            "--no-progress", *extra]
    assert main(args) == 2
    lines = [s for s in capsys.readouterr().err.splitlines() if s.strip()]
    assert len(lines) == 1 and lines[0].startswith("ami: error:"), lines
    assert not (tmp_path / "out").exists()


def test_bad_init_from_exits_2_with_one_line_and_writes_nothing(pretrained: Path, tmp_path: Path, capsys) -> None:
    cases = [["--env", "Pendulum-v1", "--init-from", str(tmp_path / "nowhere")],
             ["--env", "MountainCarContinuous-v0", "--init-from", str(pretrained)],  # another observation space
             ["--resume", str(pretrained)],
             ["--resume", str(tmp_path), "--init-from", str(pretrained)]]
    for args in cases:
        assert main(["train", "--backend", "inline", "--steps", "10", "--run-dir", str(tmp_path / "out"),
                     "--no-progress", *args]) == 2, args
        lines = [s for s in capsys.readouterr().err.splitlines() if s.strip()]
        assert len(lines) == 1 and lines[0].startswith("ami: error:"), (args, lines)
        assert not (tmp_path / "out").exists()


def test_features_learnt_by_watching_predict_better_than_interaction_alone(tmp_path: Path) -> None:
    """Pendulum with 32 noise entries after its observation, where features that have not learnt are dominated by
    the noise. `ami pretrain` watches 20 observation-only episodes; then it and a model from scratch (the same
    architecture without latent actions) each take the same 200 interaction updates on the same 500 random-play
    steps. A linear probe on their frozen features predicts the next observation on held-out interaction data;
    the pretrained model's features do it better, also before any interaction (measured here: 0.092 before and
    0.093 after the interaction updates vs 0.243 from scratch; with other seeds 0.109 / 0.109 vs 0.379)."""
    from ami.agent.agent import Agent
    from ami.agent.update import Updater
    from ami.cluster.evaluate import load_agent
    from tests.agent.helpers import batch_dict, next_obs_probe_error, random_pendulum_play, random_replay

    env_id, pre_dir = "ami/PendulumDistractors-v0", tmp_path / "pre"
    data = _npz_episodes(tmp_path / "data", env_id, n=20)
    assert main(["pretrain", "--data", str(data), "--env", env_id, "--updates", "1000", "--run-dir", str(pre_dir),
                 "--no-progress", *SMALL]) == 0
    pre = load_agent(pre_dir / "checkpoints" / "pretrained.pt")[0]
    torch.manual_seed(0)
    wm = dataclasses.replace(pre.cfg.world_model, latent_action_dim=0)
    scratch = Agent(pre.obs_space, gym.make(env_id).action_space, dataclasses.replace(pre.cfg, world_model=wm))
    held_out = random_pendulum_play(6, 99, env_id)
    watched = next_obs_probe_error(pre, held_out)
    replay = random_replay(env_id, scratch, 500, seed=1)
    for agent in (pre, scratch):
        updater = Updater(agent)
        for _ in range(200):
            updater.step(batch_dict(replay, 32, 3))
    after, scratch_err = next_obs_probe_error(pre, held_out), next_obs_probe_error(scratch, held_out)
    assert watched < 0.6 * scratch_err and after < 0.6 * scratch_err, (watched, after, scratch_err)
