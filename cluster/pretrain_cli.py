"""`ami pretrain`'s flags and entry (cluster/pretrain.py does the work; imported lazily, so `ami --help` stays
light)."""

from __future__ import annotations

import argparse
import json

from ami.cluster.config import parse_override


def add_pretrain(sub) -> None:
    """The `pretrain` subcommand's parser."""
    t = sub.add_parser("pretrain", help="train the world model from observation-only trajectories",
                       description="Learn the world model by watching: observation-only episodes, latent actions "
                                   "in place of the unseen ones; prints one JSON line. Start a run from it with "
                                   "`ami train --init-from RUN_DIR`.")
    t.add_argument("--data", required=True, metavar="PATH",
                   help="a directory of .npz episodes (an 'observations' array [T+1, ...] each) or a Minari "
                        "dataset (its directory or local id; the minari extra) (required)")
    t.add_argument("--env", required=True, metavar="ID", help="the env the observations come from (required)")
    t.add_argument("--updates", type=int, required=True, metavar="N", help="gradient steps (required)")
    t.add_argument("--run-dir", required=True, metavar="DIR", help="where to write the run (required)")
    t.add_argument("--seed", type=int, default=0, metavar="S", help="seed of weights and sampling")
    t.add_argument("--no-progress", action="store_true", help="no progress bar on stderr (default: show one)")
    t.add_argument("overrides", nargs="*", metavar="key.path=value",
                   help="config overrides as for ami train (agent.*, learner.batch_size, learner.window, "
                        "run.device, ...; default: none)")


def run_pretrain(a: argparse.Namespace) -> int:
    """Run `ami pretrain`: one JSON line on stdout (ConfigError: the CLI's exit 2)."""
    from ami.cluster.pretrain import PretrainArgs, pretrain

    layers = ({"run": {"env_id": a.env, "seed": a.seed}}, *(parse_override(o) for o in a.overrides))
    print(json.dumps(pretrain(PretrainArgs(a.data, a.updates, a.run_dir, layers), progress=not a.no_progress)))
    return 0
