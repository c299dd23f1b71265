"""Built-in gymnasium envs. Call `register_envs()` once before `gymnasium.make("ami/...")`."""

from __future__ import annotations

ENV_IDS = ("ami/Bimodal-v0",)


def register_envs() -> None:
    """Register every built-in id with gymnasium (idempotent)."""
    import gymnasium as gym

    if "ami/Bimodal-v0" not in gym.registry:
        gym.register("ami/Bimodal-v0", entry_point="envs.bimodal:BimodalEnv")
