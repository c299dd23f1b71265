"""`ami train | pretrain | eval | report | scale` (docs/contracts.md). Config errors print one line on stderr and exit 2
before anything is started or written."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from pathlib import Path

from ami.cluster.config import ConfigError, RunFailed, load_yaml, parse_override, to_dict
from ami.cluster.pretrain_cli import add_pretrain, run_pretrain

EXIT_CONFIG = 2
EXIT_FAILED = 1


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the epilogs' line breaks (the override example) and appends '(default: X)' to each help line, except
    where the default is None or False: such a flag's help says itself what leaving it out means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are ConfigErrors, which main() prints as the one line
    `ami: error: <message>` (exit 2). The message names the subcommand whose parser failed ('train: ...') but
    never `ami` again: main() adds that prefix once (argparse's own would print the usage, then `PROG: error:`)."""

    commands: dict[str, argparse.ArgumentParser]

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        command = self.prog.removeprefix("ami").strip()  # '' for ami itself, 'train' for `ami train`
        raise ConfigError(f"{command}: {message}" if command else message)


class _HelpConfig(argparse.Action):
    """--help-config: print every config key with its type, default and doc line, then exit 0 (as --help does)."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from ami.cluster.config_help import format_config_help

        try:
            print(format_config_help(), flush=True)
        except BrokenPipeError:  # `ami train --help-config | head` has read all it wanted: no traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        parser.exit()


RUN_FLAGS = (("--env", "env_id", {"metavar": "ID"}), ("--steps", "steps", {"type": int, "metavar": "N"}),
             ("--actors", "actors", {"type": int, "metavar": "K"}),
             ("--envs-per-actor", "envs_per_actor", {"type": int, "metavar": "M"}),
             ("--seed", "seed", {"type": int, "metavar": "S"}),
             ("--backend", "backend", {"choices": ["inline", "ray"]}),
             ("--run-dir", "run_dir", {"metavar": "DIR"}), ("--init-from", "init_from", {"metavar": "DIR"}))
"""`ami train` flags that set a run.* key (flag, key, argparse keywords); their help is the key's own doc line."""

OVERRIDES_EPILOG = """\
config overrides:
  Any config key can be set as key.path=value, anywhere among the flags; for example

    ami train --env Pendulum-v1 agent.planner.horizon=5 run.eval_every=10000

  The value is parsed as YAML (only true/false are booleans; nothing after '=' is the empty string).
  Later layers win: the env's and a goal task's defaults < --resume's config.yaml < --config FILE.yaml
  < flags < key.path=value overrides. Every key, with its type, default and what it does:

    ami train --help-config      ({sections})

  docs/contracts.md, section 1, has the whole command-line contract."""


def _run_flag_help(key: str) -> str:
    from ami.cluster.config import RunConfig
    from ami.cluster.config_help import field_docs

    doc = field_docs(RunConfig)[key].replace("%", "%%")  # argparse %-formats help strings
    return f"{doc} (run.{key}; default: {getattr(RunConfig(), key)!r})"


def _add_train(sub) -> None:
    from ami.cluster.config import TrainConfig

    sections = ", ".join(f"{f.name}.*" for f in dataclasses.fields(TrainConfig))
    t = sub.add_parser("train", help="train an agent (Ray actors and learner on a Redis replay, or inline)",
                       description="Train an agent; prints one JSON line: the run directory and summary.json.",
                       epilog=OVERRIDES_EPILOG.format(sections=sections))
    t.add_argument("--help-config", action=_HelpConfig,
                   help="list every config key with its type, default and meaning, and exit")
    t.add_argument("--config", metavar="FILE.yaml",
                   help="YAML file of config sections (run:, learner:, agent: ... as --help-config lists them); "
                        "flags and overrides win over it (default: none, the built-in defaults)")
    for flag, key, kwargs in RUN_FLAGS:
        t.add_argument(flag, dest=key, help=_run_flag_help(key), **kwargs)
    t.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to attach to ('auto', HOST:PORT or ray://HOST:PORT; Ray backend only) "
                        "(default: $RAY_ADDRESS, else a local Ray instance that ami starts and stops)")
    t.add_argument("--redis-url", metavar="URL",
                   help="Redis server of the replay, e.g. redis://HOST:6379/0 (Ray backend only); a URL with a "
                        "password belongs in --redis-url-file or $AMI_REDIS_URL, off the command line "
                        "(default: $AMI_REDIS_URL, else a private redis-server that ami starts and stops)")
    t.add_argument("--redis-url-file", metavar="PATH",
                   help="read the Redis URL from PATH, a file only its owner may read (chmod 600; else exit 2) "
                        "(default: none)")
    t.add_argument("--metrics-port", type=int, metavar="P",
                   help="port of the driver's Prometheus endpoint, which also serves /sd for http_sd "
                        "(default: a port the kernel picks)")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last checkpoint, with its config.yaml "
                        "(default: start a new run)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar on stderr (default: show one)")
    t.add_argument("overrides", nargs="*", metavar="key.path=value",
                   help="config overrides, e.g. agent.planner.horizon=5 (see below; default: none)")


def build_parser() -> argparse.ArgumentParser:
    """The `ami` parser; `.commands` maps each subcommand to its parser."""
    p = _Parser(prog="ami", description="JEPA world-model agent: train, evaluate, report, scale.",
                epilog="`ami COMMAND --help` shows a command's flags; `ami train --help-config` every config key.")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)  # missing: main() says so
    _add_train(sub)
    e = sub.add_parser("eval", help="evaluate a run's latest checkpoint",
                       description="Play greedy episodes with a checkpoint; prints one JSON line.")
    e.add_argument("target", metavar="RUN_DIR|CHECKPOINT",
                   help="a run directory, or a checkpoint one folder below one (RUN_DIR/checkpoints/latest.pt)")
    e.add_argument("--episodes", type=int, default=10, metavar="N", help="greedy episodes to play")
    e.add_argument("--seed", type=int, default=12345, metavar="S", help="seed of the episodes' env resets")
    e.add_argument("--video", action="store_true",
                   help="also save one greedy episode as RUN_DIR/eval.mp4 (the video extra) (default: no video)")
    add_pretrain(sub)
    r = sub.add_parser("report", help="draw learning curves to PNG",
                       description="Draw a run's metrics.jsonl as PNGs in its run directory; prints their paths.")
    r.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with metrics.jsonl")
    s = sub.add_parser("scale", help="change the number of actors of a running Ray run",
                       description="Ask a running Ray run's driver for another number of actors.")
    s.add_argument("run_dir", metavar="RUN_DIR", help="the run directory of a running Ray run (has running.json)")
    s.add_argument("--actors", type=int, required=True, metavar="K",
                   help="actors the run should have from now on (required)")
    sub.add_parser("prometheus-config", help="print a Prometheus config that finds this user's runs",
                   description="Print deploy/prometheus/prometheus.yml with this user's discovery directory "
                               "($AMI_PROMETHEUS_SD_DIR, else /tmp/ami-<uid>/prometheus) in its file_sd glob.")
    p.commands = dict(sub.choices)
    return p


_parser = build_parser  # the name tests/observability/test_deploy.py imports


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
    if a.resume and a.init_from:
        raise ConfigError("--resume continues from the run's own checkpoint: --init-from does not apply")
    if a.resume:
        rd = RunDir(Path(a.resume))
        if not (rd.path / "config.yaml").exists():
            raise ConfigError(f"--resume {a.resume}: no config.yaml there")
        if rd.pretrained.exists():
            raise ConfigError(f"--resume {a.resume}: a pretraining run; start a run from it with --init-from")
        # its resolved agent section re-applies as overrides; its weights are in its checkpoint, so the run it
        # was started from (--init-from) is not read again (and need not exist any more)
        recorded = drop_removed(rd.read_config(), str(rd.path / "config.yaml"))
        recorded.get("run", {}).pop("init_from", None)
        layers.append(recorded)
    if a.config:
        layers.append(load_yaml(a.config))
    flags = {key: getattr(a, key) for _, key, _ in RUN_FLAGS if getattr(a, key) is not None}
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
    _check_sd_dir()
    if cfg.run.backend == "ray":  # (an address Ray cannot reach is a ConfigError too: nothing written yet)
        from ami.cluster.ray_driver import train_ray
        from ami.cluster.services import check_addresses, ray_address, redis_url

        addr, url = ray_address(a.ray_address), redis_url(a.redis_url, a.redis_url_file, os.environ)
        check_addresses(url, addr)
        train, where = train_ray, {"redis_url": url, "ray_addr": addr}
    else:
        from ami.cluster.inline import train_inline

        train, where = train_inline, {}
    record = None if a.resume else to_dict(cfg, res.agent)  # config.yaml of a new run (a resumed one has its own)
    if cfg.run.init_from and not a.resume:  # (a resumed run has its own weights)
        from ami.cluster.pretrain import check_init

        where["init"] = check_init(res, cfg.run.init_from)
    summary = train(cfg, res.agent, res.info, run, record, progress=not a.no_progress,
                    metrics_port=a.metrics_port, **where)
    print(json.dumps({"run_dir": str(run.path), **summary}))
    return 0


def _check_sd_dir() -> Path:
    """This user's discovery directory, checked before a run starts (nothing written when it is unsafe)."""
    from ami.telemetry.discovery import UnsafeDirectory, checked_sd_dir

    try:
        return checked_sd_dir()
    except UnsafeDirectory as e:
        raise ConfigError(str(e)) from None


def _prometheus_config(a: argparse.Namespace) -> int:
    from ami.telemetry.prometheus_config import prometheus_config

    print(prometheus_config(str(_check_sd_dir())), end="")
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
        p = build_parser()
        a, extra = p.parse_known_args(argv)
        if a.cmd in ("train", "pretrain"):  # key=value overrides may sit anywhere between the flags
            a.overrides += [x for x in extra if "=" in x and not x.startswith("-")]
            extra = [x for x in extra if not ("=" in x and not x.startswith("-"))]
        if extra:  # said by the subcommand's parser, so the message names it
            p.commands.get(a.cmd, p).error(f"unrecognized arguments: {' '.join(extra)}")
        if a.cmd is None:
            p.error(f"no command given: choose one of {', '.join(p.commands)} (ami --help says what each does)")
        return {"train": _train, "pretrain": run_pretrain, "eval": _eval, "report": _report, "scale": _scale,
                "prometheus-config": _prometheus_config}[a.cmd](a)
    except ConfigError as e:
        print(f"ami: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, whatever the message
        return EXIT_CONFIG
    except RunFailed as e:  # a started run gave up (a crash loop): its last checkpoint stays for --resume
        print(f"ami: error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
