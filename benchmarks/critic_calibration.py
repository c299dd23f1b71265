"""Is a trained critic calibrated? Its Q against the discounted return that actually followed, on the run's own
replay (inline runs keep it in their checkpoint; latest.pt, else previous.pt).

    python benchmarks/critic_calibration.py RUN_DIR [RUN_DIR ...] [--last 20000]

For the last `--last` transitions of each run's replay (the data the final critic was trained on most recently):
- **G**: the discounted intrinsic return that followed each step, exact where the episode ended by termination;
  rows closer to a truncation (or a break in the replay, e.g. a resume) than the horizon where gamma^k < 0.01 are
  left out, so no figure leans on the critic itself;
- **Q(s, a)**: the critic (mean over members, in return units) at the recorded action; its bias Q - G, the ratio of
  means and the correlation with G (a runaway critic reads high and uncorrelated);
- **mode-1 gap**: Q(s, mode-1's action) - Q(s, recorded action): how far mode-1, whose action the TD target reads
  at s', rates its own actions above those that were played (exploitation of the critic's errors shows here);
- **TD error**: mean squared 1-step TD error in the members' regression space (target critic at mode-1's sample).

Prints a markdown row per run; last line one JSON object {run name: figures}. No Ray, no Redis: runs anywhere the
checkout runs. Found with it: Hopper-v5 at the defaults overestimates 4-5x (RESULTS.md, #9).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from ami.agent.agent import Agent
from ami.agent.perception import column, obs_to_tensor
from ami.cluster.config import ConfigError
from ami.cluster.evaluate import agent_from, read_run_checkpoint


def replay_tail(state: dict, run: Path, last: int) -> dict[str, np.ndarray]:
    """The last `last` rows of the replay an inline run saved with its checkpoint `state`, as numpy columns."""
    if "replay" not in state:
        raise SystemExit(f"{run}: its checkpoint holds no replay (Ray runs keep theirs in Redis)")
    cols = state["replay"]["columns"]
    n = len(cols["reward"])
    return {k: np.asarray(v[max(0, n - last):]) for k, v in cols.items()}


def episode_breaks(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Rows after which the next row does not continue the same episode (a reset, a resume, the tail's end)."""
    nxt, obs = column(cols, "next_obs"), column(cols, "obs")
    pairs = [(nxt[k], obs[k]) for k in nxt] if isinstance(nxt, dict) else [(nxt, obs)]
    jump = np.zeros(len(cols["reward"]) - 1, bool)
    for a, b in pairs:
        jump |= np.any(a[:-1].reshape(len(jump), -1) != b[1:].reshape(len(jump), -1), axis=1)
    return np.r_[jump, True] | cols["terminated"].astype(bool) | cols["truncated"].astype(bool)


def returns_that_followed(reward: np.ndarray, term: np.ndarray, breaks: np.ndarray, gamma: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(G, exact): the discounted sum of rewards to each row's episode end, and whether that sum is the whole
    return (the episode terminated, or its cut lies so far ahead that gamma^k < 0.01 of the value is missing)."""
    far = math.ceil(math.log(0.01) / math.log(gamma))
    g, exact = np.zeros(len(reward)), np.zeros(len(reward), bool)
    acc, to_cut, ended = 0.0, 0, False
    for i in range(len(reward) - 1, -1, -1):
        if breaks[i]:
            acc, to_cut, ended = 0.0, 0, bool(term[i])
        acc = reward[i] + gamma * acc
        to_cut += 1
        g[i], exact[i] = acc, ended or to_cut >= far
    return g, exact


@torch.no_grad()
def calibration(agent: Agent, cols: dict[str, np.ndarray]) -> dict[str, float]:
    """The figures of the module docstring for one run's replay tail."""
    dev = agent.device
    act = agent.action.to_model(cols["action"], dev)
    cost = agent.cost.observed(-torch.as_tensor(cols["reward"], dtype=torch.float32), act)
    term = cols["terminated"].astype(bool)
    gamma = agent.cfg.cost.gamma
    g, exact = returns_that_followed(-cost.double().numpy(), term, episode_breaks(cols), gamma)
    s = agent.world_model.encode(obs_to_tensor(column(cols, "obs"), dev))
    s2 = agent.world_model.encode(obs_to_tensor(column(cols, "next_obs"), dev))
    q_rec = -agent.critic(s, act)
    q_pi = -agent.critic(s, agent.policy.sample(s, greedy=True)[0])
    y = cost + gamma * (1 - torch.as_tensor(term).float()) * agent.critic.target(s2, agent.policy.sample(s2)[0])
    td = (agent.critic.raw_q(s, act) - agent.critic.encode_value(y)[None]).pow(2).mean()
    q, g = q_rec.double().numpy()[exact], g[exact]
    return {"rows": int(exact.sum()), "return_that_followed": float(g.mean()), "q": float(q.mean()),
            "bias": float((q - g).mean()), "ratio": float(q.mean() / g.mean()) if g.mean() else float("nan"),
            "corr": float(np.corrcoef(q, g)[0, 1]) if len(g) > 1 else float("nan"),
            "mode1_gap": float((q_pi - q_rec).mean()), "td_error": float(td), "gamma": gamma}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--last", type=int, default=20000, help="replay rows from the end (default 20000)")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)  # mode-1's samples in the TD target
    out = {}
    common = Path(os.path.commonpath([r.resolve() for r in a.runs])) if len(a.runs) > 1 else a.runs[0].parent
    print("| run | rows | return that followed | Q(s, a) | ratio | corr | mode-1 gap | TD error |")
    print("|---|---|---|---|---|---|---|---|")
    for run in a.runs:
        name = str(run.resolve().relative_to(common.resolve()))
        try:
            state, cfg = read_run_checkpoint(run)  # read once: the agent and its replay come from the same file
            agent = agent_from(state, cfg)
        except ConfigError as e:  # e.g. a run of another commit whose config has keys this one lacks
            print(f"| {name} | not loaded: {' '.join(str(e).split())} |||||||", flush=True)
            continue
        agent.eval()
        f = out[name] = calibration(agent, replay_tail(state, run, a.last))
        print(f"| {name} | {f['rows']} | {f['return_that_followed']:.1f} | {f['q']:.1f} | {f['ratio']:.2f} | "
              f"{f['corr']:.2f} | {f['mode1_gap']:+.1f} | {f['td_error']:.4f} |", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
