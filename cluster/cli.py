"""`ami train | eval | report | scale` (docs/contracts.md). Config errors print one line on stderr and exit 2
before anything is started or written."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from ami.cluster.config import ConfigError, load_yaml, parse_override, to_dict

EXIT_CONFIG = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage + message by default)
        raise ConfigError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ami", description="JEPA world-model agent: train, evaluate, report.")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    t = sub.add_parser("train", help="train an agent")
    t.add_argument("--config", help="YAML config file")
    t.add_argument("--env", dest="env_id")
    t.add_argument("--steps", type=int)
    t.add_argument("--actors", type=int)
    t.add_argument("--envs-per-actor", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--backend", choices=["inline", "ray"])
    t.add_argument("--ray-address")
    t.add_argument("--redis-url")
    t.add_argument("--run-dir")
    t.add_argument("--metrics-port", type=int)
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("overrides", nargs="*", metavar="key.path=value")
    e = sub.add_parser("eval", help="evaluate a run's latest checkpoint")
    e.add_argument("target", metavar="RUN_DIR|CHECKPOINT")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--seed", type=int, default=12345)
    e.add_argument("--video", action="store_true", help="save one greedy episode as RUN_DIR/eval.mp4 (the video extra)")
    r = sub.add_parser("report", help="draw learning curves to PNG")
    r.add_argument("run_dir")
    s = sub.add_parser("scale", help="change the number of actors of a running Ray run")
    s.add_argument("run_dir")
    s.add_argument("--actors", type=int, required=True)
    return p


REMOVED_KEYS = ("runner.num_envs", "runner.seed", "runner.actor_id", "runner.first_episode",
                "agent.optim.batch_size")
"""Keys a run directory's config.yaml may hold from before they were removed (the runtime assigned the runner's,
learner.batch_size is the batch size): --resume drops them with one warning line."""


def drop_removed(recorded: dict, where: str) -> dict:
    """`recorded` (a run's config.yaml) without REMOVED_KEYS; says on stderr which it dropped."""
    dropped = []
    for key in REMOVED_KEYS:
        *parents, leaf = key.split(".")
        node = recorded
        for k in parents:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            del node[leaf]
            dropped.append(key)
    if dropped:
        print(f"ami: warning: {where}: ignoring keys this version no longer has: {', '.join(dropped)}",
              file=sys.stderr)
    return recorded


def _train(a: argparse.Namespace) -> int:
    from ami.cluster.resolve import resolve_run
    from ami.cluster.rundir import RunDir, default_path

    layers: list[dict] = []
    if a.resume:
        rd = RunDir(Path(a.resume))
        if not (rd.path / "config.yaml").exists():
            raise ConfigError(f"--resume {a.resume}: no config.yaml there")
        # its resolved agent section re-applies as overrides
        layers.append(drop_removed(rd.read_config(), str(rd.path / "config.yaml")))
    if a.config:
        layers.append(load_yaml(a.config))
    flags = {k: v for k, v in {"env_id": a.env_id, "steps": a.steps, "actors": a.actors,
                                "envs_per_actor": a.envs_per_actor, "seed": a.seed, "backend": a.backend,
                                "run_dir": a.run_dir}.items() if v is not None}
    if flags:
        layers.append({"run": flags})
    for o in a.overrides:
        layers.append(parse_override(o))
    res = resolve_run(layers)
    cfg = res.cfg
    if a.resume:
        run = RunDir(Path(a.resume))
    else:
        run = RunDir(Path(cfg.run.run_dir) if cfg.run.run_dir else default_path(cfg.run.env_id))
        if (run.path / "summary.json").exists() or run.latest_checkpoint.exists():
            raise ConfigError(f"run directory {run.path} already holds a run; use --resume {run.path}")
    if cfg.run.backend == "ray":  # (an address Ray cannot reach is a ConfigError too: nothing written yet)
        from ami.cluster.ray_driver import train_ray
        from ami.cluster.services import check_addresses, ray_address

        addr = ray_address(a.ray_address)
        check_addresses(a.redis_url, addr)
        train, where = train_ray, {"redis_url": a.redis_url, "ray_addr": addr}
    else:
        from ami.cluster.inline import train_inline

        train, where = train_inline, {}
    record = None if a.resume else to_dict(cfg, res.agent)  # config.yaml of a new run (a resumed one has its own)
    summary = train(cfg, res.agent, res.info, run, record, progress=not a.no_progress,
                    metrics_port=a.metrics_port, **where)
    print(json.dumps({"run_dir": str(run.path), **summary}))
    return 0


def _eval(a: argparse.Namespace) -> int:
    from ami.cluster.evaluate import evaluate_target

    print(json.dumps(evaluate_target(Path(a.target), a.episodes, a.seed, a.video)))
    return 0


def _report(a: argparse.Namespace) -> int:
    from ami.cluster.report import draw_report

    for p in draw_report(Path(a.run_dir)):
        print(p)
    return 0


def _scale(a: argparse.Namespace) -> int:
    from ami.cluster.scale import request_scale

    print(json.dumps(request_scale(Path(a.run_dir), a.actors)))
    return 0


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C must stop a run cleanly even when ami was started with SIGINT ignored (nohup, `cmd &` from a
    # script): Python installs no KeyboardInterrupt handler for an inherited SIG_IGN, so install it here.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        p = _parser()
        a, extra = p.parse_known_args(argv)
        if a.cmd == "train":  # key=value overrides may sit anywhere between the flags
            a.overrides += [x for x in extra if "=" in x and not x.startswith("-")]
            extra = [x for x in extra if not ("=" in x and not x.startswith("-"))]
        if extra:
            p.error(f"unrecognized arguments: {' '.join(extra)}")
        return {"train": _train, "eval": _eval, "report": _report, "scale": _scale}[a.cmd](a)
    except ConfigError as e:
        print(f"ami: error: {e}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
