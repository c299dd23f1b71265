"""Linear probes of what pretraining by watching gives the encoder (a Pendulum variant, random torques). Not run in CI.

    PYTHONPATH=. python benchmarks/passive_probe.py --pretrain-updates 2000 --interaction-updates 300 \\
        --episodes 40 --seeds 0,1,2

Per seed: a world model pretrained on --episodes observation-only episodes (agent/pretrain.py, batch 64, window
3), and one trained from scratch on interaction (agent/update.py on 500 random-play steps, batch 64). A linear probe
(ridge, its strength picked on held-out rows) maps [s_t, a_t] to Pendulum's part of o_t+1 on half of 6 held-out
episodes and is scored on the other half: the error per observation dimension over that dimension's variance,
averaged (0 = perfect, 1 = no better than the mean). Printed: the pretrained model before and after
--interaction-updates updates, the scratch model after them, a random encoder; and R^2 of the real action from the
inferred latent action (pretrained model).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def action_r2(agent, episodes) -> float:
    wm = agent.world_model
    with torch.no_grad():
        s = [wm.encode(torch.as_tensor(o)) for o, _ in episodes]
        u = np.concatenate([wm.infer_action(x[:-1], x[1:])[1].numpy() for x in s])
    from tests.agent.helpers import probe_error

    return 1.0 - probe_error(u, np.concatenate([a for _, a in episodes]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrain-updates", type=int, default=2000)
    ap.add_argument("--interaction-updates", type=int, default=300)
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--env", default="ami/PendulumDistractors-v0",
                    help="Pendulum-v1, or with 32 noise entries appended (on the bare task a random encoder's "
                         "features already linearise the next observation: the probe cannot tell encoders apart)")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import gymnasium as gym

    from ami.actors.runner import EpisodeRunner, RunnerConfig, RunnerPlace
    from ami.agent.agent import Agent
    from ami.agent.configurator import ComputeBudget, configure
    from ami.agent.pretrain import PassiveUpdater
    from ami.agent.update import Updater
    from ami.envs import register_envs
    from ami.memory.local import LocalReplay
    from ami.memory.passive import Windows
    from tests.agent.helpers import batch_dict, next_obs_probe_error, random_pendulum_play

    torch.set_num_threads(1)
    register_envs()
    env = gym.make(a.env)

    def agent(latent: int, seed: int):
        torch.manual_seed(seed)
        cfg = configure(env.observation_space, env.action_space, budget=ComputeBudget(plan_evals=256))
        wm = dataclasses.replace(cfg.world_model, latent_action_dim=latent)
        return Agent(env.observation_space, env.action_space, dataclasses.replace(cfg, world_model=wm))

    held_out = random_pendulum_play(6, 99, a.env)
    for seed in (int(s) for s in a.seeds.split(",")):
        pre = agent(1, seed)
        upd = PassiveUpdater(pre.world_model, pre.cfg.optim.lr, pre.cfg.optim.grad_clip, pre.device)
        windows = Windows([o for o, _ in random_pendulum_play(a.episodes, seed, a.env)], 4, seed)
        for _ in range(a.pretrain_updates):
            upd.step(windows.sample(64))
        row = {"seed": seed, "pretrained": next_obs_probe_error(pre, held_out), "action_r2": action_r2(pre, held_out)}
        replay, scratch = LocalReplay(4000, seed=seed), agent(0, seed)
        runner = EpisodeRunner(a.env, scratch, RunnerConfig(), replay.add, RunnerPlace(num_envs=2, seed=seed))
        runner.step(500, random=True)
        runner.flush_all()
        for name, ag in (("pretrained+interaction", pre), ("scratch", scratch)):
            u = Updater(ag)
            for _ in range(a.interaction_updates):
                u.step(batch_dict(replay, 64, 3))
            row[name] = next_obs_probe_error(ag, held_out)
        row["random_encoder"] = next_obs_probe_error(agent(0, seed + 50), held_out)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
