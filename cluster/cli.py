"""`ami train | eval | report` (DESIGN.md). Config errors print one line on stderr and exit 2 before anything
is started or written."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from ami.cluster.config import ConfigError, build, env_defaults, env_spec, load_yaml, parse_override, task_defaults

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
    e.add_argument("--video", action="store_true", help="save a GIF of the first episode")
    r = sub.add_parser("report", help="draw learning curves to PNG")
    r.add_argument("run_dir")
    s = sub.add_parser("scale", help="change the number of actors of a running Ray run")
    s.add_argument("run_dir")
    s.add_argument("--actors", type=int, required=True)
    return p


def resolve_run(layers: list[dict]):
    """(TrainConfig, EnvInfo) of a run from the user's layers: under them the env's defaults (DMC's action
    repeat), then the task's (goal tasks); what the user set wins over both."""
    from ami.cluster.envinfo import inspect_env

    cfg = build(layers)
    env_layer = env_defaults(cfg.run.env_id)
    cfg = build([env_layer, *layers])
    info = inspect_env(env_spec(cfg.run))
    preset = task_defaults(cfg, info.observation_space, info.action_space, info.max_episode_steps)
    if preset:
        cfg = build([env_layer, preset, *layers])
    if cfg.run.explore_env_id:
        play = inspect_env(env_spec(cfg.run, cfg.run.explore_env_id))
        if (play.observation_space, play.action_space) != (info.observation_space, info.action_space):
            raise ConfigError(f"run.explore_env_id {play.env_id!r} has other spaces than {info.env_id!r}")
    return cfg, info


def _train(a: argparse.Namespace) -> int:
    from ami.cluster.rundir import RunDir, default_path

    layers: list[dict] = []
    if a.resume:
        rd = RunDir(Path(a.resume))
        if not (rd.path / "config.yaml").exists():
            raise ConfigError(f"--resume {a.resume}: no config.yaml there")
        layers.append(rd.read_config())  # its resolved agent section re-applies as overrides
    if a.config:
        layers.append(load_yaml(a.config))
    flags = {k: v for k, v in {"env_id": a.env_id, "steps": a.steps, "actors": a.actors,
                                "envs_per_actor": a.envs_per_actor, "seed": a.seed, "backend": a.backend,
                                "run_dir": a.run_dir}.items() if v is not None}
    if flags:
        layers.append({"run": flags})
    for o in a.overrides:
        layers.append(parse_override(o))
    cfg, info = resolve_run(layers)
    if a.resume:
        run = RunDir(Path(a.resume))
    else:
        run = RunDir(Path(cfg.run.run_dir) if cfg.run.run_dir else default_path(cfg.run.env_id))
        if (run.path / "summary.json").exists() or run.latest_checkpoint.exists():
            raise ConfigError(f"run directory {run.path} already holds a run; use --resume {run.path}")
    if cfg.run.backend == "ray":
        from ami.cluster.ray_driver import train_ray
        from ami.cluster.services import check_addresses, ray_address

        addr = ray_address(a.ray_address)
        check_addresses(a.redis_url, addr)
        summary = train_ray(cfg, info, run, resume=bool(a.resume), progress=not a.no_progress,
                            redis_url=a.redis_url, ray_addr=addr, metrics_port=a.metrics_port)
    else:
        from ami.cluster.inline import train_inline

        summary = train_inline(cfg, info, run, resume=bool(a.resume), progress=not a.no_progress,
                               metrics_port=a.metrics_port)
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
