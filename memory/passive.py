"""Observation-only trajectories for `ami pretrain`: read from disk, sampled as windows.

Two formats, told apart by what PATH is:
- a directory of `.npz` files, one episode each, with an `observations` array [T+1, ...] (the observation the
  episode started in and one after each step; any other array, e.g. `actions`, is ignored);
- a Minari dataset: its directory (the one holding `data/`), or its id in the local Minari root
  (`$MINARI_DATASETS_PATH`, else ~/.minari/datasets). Only the observations are read; actions are dropped.
  Dict observations (a goal env's {'observation', 'goal'}) give the one key the caller names (the state).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class PassiveDataError(ValueError):
    """PATH holds no usable observation-only data (the message says why, in one line)."""


def load_observations(path: str, key: str | None = None) -> list[np.ndarray]:
    """Every episode's observations [T+1, ...] as float32 arrays, from an .npz directory or a Minari dataset
    (`key`: the entry of Dict observations to read, e.g. a goal env's state; None: Dict observations are an error)."""
    p = Path(path)
    if p.is_dir() and any(p.glob("*.npz")):
        episodes = [_npz_episode(f) for f in sorted(p.glob("*.npz"))]
    elif p.is_dir() and (p / "data").is_dir() or not p.exists():  # a dataset's directory, or an id
        episodes = _minari_episodes(p, key)
    else:
        raise PassiveDataError(f"--data {path}: neither a directory of .npz episodes nor a Minari dataset")
    if not episodes:
        raise PassiveDataError(f"--data {path}: no episodes")
    shapes = {e.shape[1:] for e in episodes}
    if len(shapes) > 1:
        raise PassiveDataError(f"--data {path}: episodes have different observation shapes {sorted(shapes)}")
    return episodes


def _npz_episode(f: Path) -> np.ndarray:
    try:
        z = np.load(f, allow_pickle=False)  # never unpickle what a file says
    except (OSError, ValueError, EOFError) as e:
        raise PassiveDataError(f"{f}: not a readable .npz file ({' '.join(str(e).split())})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise PassiveDataError(f"{f}: not an .npz archive")
    with z:
        if "observations" not in z.files:
            raise PassiveDataError(f"{f}: no 'observations' array (has: {', '.join(z.files) or 'nothing'})")
        try:
            obs = z["observations"]
        except ValueError as e:  # an object array: it would need unpickling
            raise PassiveDataError(f"{f}: 'observations' is unreadable ({e})") from None
    return _checked(obs, str(f))


def _minari_episodes(p: Path, key: str | None) -> list[np.ndarray]:
    try:
        import minari
    except ImportError:
        raise PassiveDataError("reading a Minari dataset needs the minari extra: pip install 'ami-agent[minari]'") \
            from None
    try:
        ds = minari.MinariDataset(p / "data") if (p / "data").is_dir() else minari.load_dataset(str(p))
    except (FileNotFoundError, ValueError, OSError) as e:
        what = "no such path, and no local Minari dataset of that id" if not p.exists() else "not a Minari dataset"
        raise PassiveDataError(f"--data {p}: {what} ({' '.join(str(e).split())})") from None
    out = []
    for ep in ds.iterate_episodes():
        obs = ep.observations
        if isinstance(obs, dict):
            if key is None or key not in obs:
                raise PassiveDataError(f"--data {p}: Dict observations ({', '.join(obs)}) hold no {key or 'state'} "
                                       f"key this env's world model encodes")
            obs = obs[key]
        out.append(_checked(np.asarray(obs), f"{p} episode {ep.id}"))
    return out


def _checked(obs: np.ndarray, where: str) -> np.ndarray:
    if obs.ndim < 2 or obs.shape[0] < 2:
        raise PassiveDataError(f"{where}: observations must be [T+1, ...] with T >= 1, got shape {obs.shape}")
    if obs.dtype == np.uint8:
        return obs
    obs = obs.astype(np.float32, copy=False)
    if not np.isfinite(obs).all():
        raise PassiveDataError(f"{where}: observations hold NaN or inf")
    return obs


class Windows:
    """Uniform windows of `length` consecutive observations, never across episodes."""

    def __init__(self, episodes: list[np.ndarray], length: int, seed: int):
        self.episodes = [e for e in episodes if len(e) >= length]
        if not self.episodes:
            raise PassiveDataError(f"no episode has the {length} observations a window needs")
        self.length = length
        starts = np.array([len(e) - length + 1 for e in self.episodes])
        self._cum = np.cumsum(starts)
        self.rng = np.random.default_rng(seed)

    @property
    def transitions(self) -> int:
        return int(sum(len(e) - 1 for e in self.episodes))

    def sample(self, batch: int) -> np.ndarray:
        """[batch, length, ...] windows."""
        flat = self.rng.integers(0, self._cum[-1], batch)
        ep = np.searchsorted(self._cum, flat, side="right")
        start = flat - np.concatenate([[0], self._cum[:-1]])[ep]
        return np.stack([self.episodes[e][s:s + self.length] for e, s in zip(ep, start, strict=True)])
