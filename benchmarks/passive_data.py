"""Observation-only data for `ami pretrain`: episodes of a scripted or random policy, actions dropped.

    python benchmarks/passive_data.py --env Pendulum-v1 --episodes 50 --policy scripted --out data/pendulum-watch
    python benchmarks/passive_data.py --env Pendulum-v1 --episodes 50 --minari ami/pendulum-watch-v0

--out writes one .npz per episode with an `observations` array [T+1, obs_dim] (the format memory/passive.py
reads); --minari creates a local Minari dataset of that id instead (the minari extra), whose action column
`ami pretrain` ignores. Policies: 'random' (uniform actions) and 'scripted' (Pendulum-v1: energy pumping toward
the top, the passive-observation benchmark's "someone else swinging the pendulum"; the rooms envs (ami/TwoRooms-v0
...): walking to the goal through the door; other envs: random). Goal envs keep the state part of each observation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def scripted_pendulum(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pump energy toward the upright (E = 0 there) with some noise: swings of every amplitude get seen."""
    cos, _, vel = obs
    energy = 0.5 * vel ** 2 + 10.0 * (cos - 1.0)  # (g = 10, m = l = 1), 0 at rest upright
    push = np.sign(vel * -energy) if abs(vel) > 1e-3 else 1.0
    return np.clip(2.0 * push + rng.normal(0, 0.5), -2.0, 2.0).astype(np.float32)[None]


def _cell(rooms, p: np.ndarray) -> str:
    """The layout character under p: a room's digit, or '.' in a door."""
    return rooms.layout[int(p[1])][int(p[0])]


def scripted_rooms(rooms, rng: np.random.Generator) -> np.ndarray:
    """Walk toward the goal, by way of the nearest door while it lies in another room, with some noise: someone
    else reaching goals in a rooms env (envs/rooms.py; positions in cell units)."""
    target = rooms.goal
    if _cell(rooms, rooms.pos) not in (".", _cell(rooms, rooms.goal)):
        doors = [np.array([c + 0.5, r + 0.5]) for r, row in enumerate(rooms.layout) for c, ch in enumerate(row)
                 if ch == "."]
        target = min(doors, key=lambda d: np.linalg.norm(d - rooms.pos))
    d = target - rooms.pos
    return np.clip(d / max(np.linalg.norm(d), 1e-6) + rng.normal(0, 0.3, 2), -1, 1).astype(np.float32)


def _make(env_id: str):
    import gymnasium as gym

    if env_id.startswith("ami/"):  # the built-in envs (envs/) are registered on demand
        sys.path.insert(0, str(ROOT))
        from ami.envs import register_envs

        register_envs()
    return gym.make(env_id)


def _stacked(seen: list) -> np.ndarray | dict[str, np.ndarray]:
    """Observations [T+1, ...], or one such array per key of Dict observations (Minari stores them so)."""
    if isinstance(seen[0], dict):
        return {k: np.asarray([o[k] for o in seen]) for k in seen[0]}
    return np.asarray(seen)


def episodes(env_id: str, n: int, policy: str, seed: int) -> list[np.ndarray]:
    """`n` episodes' observations [T+1, ...] (a goal env's state part: the goal is no part of the dynamics)."""
    env, rng, out = _make(env_id), np.random.default_rng(seed), []
    env.action_space.seed(seed)
    rooms = env.unwrapped if hasattr(env.unwrapped, "layout") else None
    for e in range(n):
        obs, _ = env.reset(seed=seed + e)
        seen, done = [obs], False
        while not done:
            if policy == "scripted" and env_id.startswith("Pendulum"):
                a = scripted_pendulum(obs, rng)
            elif policy == "scripted" and rooms is not None:
                a = scripted_rooms(rooms, rng)
            else:
                a = env.action_space.sample()
            obs, _, term, trunc, _ = env.step(a)
            seen.append(obs)
            done = term or trunc
            if term and rooms is not None and policy == "scripted" and not trunc:
                # the walker goes on to a goal in another room until the time limit: long watched episodes
                here = _cell(rooms, rooms.pos)
                rooms.goal = rooms._sample_in(int(rooms.np_random.choice([k for k in rooms.rooms if str(k) != here])))
                done = rooms._t >= rooms.max_steps
        obs = _stacked(seen)
        out.append(np.asarray(obs["observation"] if isinstance(obs, dict) else obs, np.float32))
    env.close()
    return out


def write_minari(env_id: str, n: int, seed: int, dataset_id: str) -> None:
    """A local Minari dataset (HDF5) of `n` random-policy episodes; Minari stores actions, pretraining drops them."""
    from minari import create_dataset_from_buffers
    from minari.data_collector.episode_buffer import EpisodeBuffer

    env, buffers = _make(env_id), []
    env.action_space.seed(seed)
    for e in range(n):
        obs, _ = env.reset(seed=seed + e)
        seen, acts, rews, terms, truncs = [obs], [], [], [], []
        while not (terms and (terms[-1] or truncs[-1])):
            a = env.action_space.sample()
            obs, r, term, trunc, _ = env.step(a)
            seen.append(obs), acts.append(a), rews.append(r), terms.append(term), truncs.append(trunc)
        buffers.append(EpisodeBuffer(id=e, seed=seed + e, observations=_stacked(seen), actions=np.asarray(acts),
                                     rewards=rews, terminations=terms, truncations=truncs))
    create_dataset_from_buffers(dataset_id, buffers, env=env_id, eval_env=env_id, algorithm_name="random",
                                data_format="hdf5")
    env.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="Pendulum-v1")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--policy", choices=("random", "scripted"), default="scripted")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="", help="directory of .npz episodes to write")
    ap.add_argument("--minari", default="", metavar="ID", help="create a local Minari dataset of this id instead")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if a.minari:
        write_minari(a.env, a.episodes, a.seed, a.minari)
        print(a.minari)
        return 0
    out = Path(a.out or f"data/{a.env.replace('/', '_')}-{a.policy}")
    out.mkdir(parents=True, exist_ok=True)
    for i, obs in enumerate(episodes(a.env, a.episodes, a.policy, a.seed)):
        np.savez(out / f"episode-{i:05d}.npz", observations=obs)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
