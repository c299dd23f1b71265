"""The control-suite table: ami at a fixed step budget on DeepMind Control and MuJoCo, beside the published
figures of SAC, TD-MPC2 and MR.Q (benchmarks/RESULTS.md "Control suites").

    python benchmarks/control_suite.py [--tasks cheetah-run,walker-walk,...] [--steps 100000] [--seeds 0,1,2]
                                       [--parallel 2] [--backend inline|ray] [--out benchmarks/results]
                                       [--dry] [extra key=value overrides]

Each run is one `ami train` process with the defaults (one configuration for every task; DMC ids play at action
repeat 2 and count decisions, as the peers do). Its eval curve (mean return of 10 greedy episodes every 5000
steps) and the commit it ran on go to OUT/control_suite/<task>-s<seed>.csv; a run whose CSV exists is skipped,
so the table can be filled over several sittings (commit the CSVs); a run stopped (Ctrl-C, SIGTERM) or killed
goes on from its checkpoint at the next call, replay included on the inline backend, and its CSV's `sittings`
says how many invocations it took. Short names are DMC tasks
('cheetah-run' -> dm_control/cheetah-run-v0); anything with a '-v<N>' suffix is a gymnasium id (HalfCheetah-v5).
Prints a markdown table and writes OUT/control_suite.png; the last line is one JSON object mapping each task to
ami's mean final eval return over the seeds that finished, plus "mean".
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SIX = ("cartpole-swingup", "pendulum-swingup", "cheetah-run", "walker-walk", "finger-spin", "reacher-easy")
PEERS = {  # at 100k decisions (DMC, action repeat 2) / env steps (MuJoCo): SAC, TD-MPC2, MR.Q
    "cartpole-swingup": (835, 839, 860), "pendulum-swingup": (96, 724, 797), "cheetah-run": (310, 519, 842),
    "walker-walk": (708, 962, 962), "finger-spin": (762, 948, 812), "reacher-easy": (540, 937, 947),
    "hopper-stand": (2, 28, 750), "ball_in_cup-catch": (958, 981, 972),
    "HalfCheetah-v5": (None, None, 7872), "Hopper-v5": (None, None, 2249),
}  # SAC on MuJoCo: SB3 SAC with its defaults, run here (benchmarks/sb3_sac.py), in its own column
SOURCES = ("SAC and TD-MPC2: nicklashansen/tdmpc2 results/sac/<task>.csv and results/tdmpc2/<task>.csv (seeds 1-3, "
           "rows step == 100000); MR.Q: facebookresearch/MRQ results/dmc_results.txt and results/gym_results.txt "
           "(seeds 0-9, row Timestep 100000; MuJoCo figures are its Gym-*-v4 runs). Means over seeds.")
FIELDS = ("env_steps", "sim_steps", "eval_return_mean", "eval_return_std", "wall_seconds", "commit", "sittings")


def finished(run_dir: Path, steps: int) -> bool:
    """The run reached its budget (a run stopped by Ctrl-C or SIGTERM has a summary too, short of it)."""
    summary = run_dir / "summary.json"
    return summary.exists() and json.loads(summary.read_text())["env_steps"] >= steps


def env_id(task: str) -> str:
    return task if re.search(r"-v\d+$", task) else f"dm_control/{task}-v0"


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=Path(__file__).parent)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True, cwd=Path(__file__).parent).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def run_one(task: str, seed: int, args, extra: list[str]) -> Path | None:
    """Train one (task, seed) unless its CSV exists; returns the CSV (None: the run stopped short of its budget,
    a later call goes on with it)."""
    out = Path(args.out) / "control_suite" / f"{task}-s{seed}.csv"
    if out.exists():
        return out
    run_dir = Path(args.runs) / f"{task}-s{seed}"
    cmd = [sys.executable, "-m", "ami.cluster.cli", "train", "--env", env_id(task), "--seed", str(seed),
           "--steps", str(args.steps), "--backend", args.backend, "--run-dir", str(run_dir), "--no-progress",
           "run.eval_episodes=10", *extra]
    started = Path(args.runs) / f"{task}-s{seed}.commit"  # the commit the run started on (edits may follow)
    resumes = Path(args.runs) / f"{task}-s{seed}.resumes"  # one line per sitting that went on from a checkpoint
    if not finished(run_dir, args.steps):  # (a finished run whose CSV is missing is only read)
        if (run_dir / "checkpoints" / "latest.pt").exists():  # stopped or killed: go on from its checkpoint
            cmd = [sys.executable, "-m", "ami.cluster.cli", "train", "--resume", str(run_dir), "--no-progress"]
            with resumes.open("a") as f:  # (an inline checkpoint holds the replay: the same run goes on)
                f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {commit()}\n")
        if not started.exists():
            started.parent.mkdir(parents=True, exist_ok=True)
            started.write_text(commit())
        print(f"start {task} seed {seed}: {' '.join(cmd[2:])}", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=Path(__file__).parents[1])
        if not finished(run_dir, args.steps):  # stopped (Ctrl-C, SIGTERM): no CSV until it has run its budget
            print(f"stopped {task} seed {seed} short of {args.steps} steps: run again to go on", flush=True)
            return None
    summary = json.loads((run_dir / "summary.json").read_text())
    repeat = summary.get("action_repeat", 1)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rev = started.read_text().strip() if started.exists() else commit()
    sittings = 1 + (len(resumes.read_text().splitlines()) if resumes.exists() else 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        for r in rows:
            if "eval_return_mean" in r:
                w.writerow([r["env_steps"], r["env_steps"] * repeat, r["eval_return_mean"], r["eval_return_std"],
                            round(r["wall_seconds"], 1), rev, sittings])
    tmp.replace(out)
    print(f"done {task} seed {seed}: final {summary['eval_return_mean']:.1f} in {summary['wall_seconds']:.0f} s",
          flush=True)
    return out


def read_curve(path: Path) -> list[dict]:
    with path.open() as f:
        return [{k: (v if k == "commit" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def table(tasks: list[str], seeds: list[int], out: Path, steps: int) -> dict:
    """Markdown table of the finished runs (final eval at `steps`), and the JSON of the last line."""
    print("\n| task | SAC | TD-MPC2 | MR.Q | SB3 SAC here | ami (mean ± sd, seeds) | wall-clock per run | steps/s |")
    print("|---|---|---|---|---|---|---|---|")
    finals: dict[str, float] = {}
    for task in tasks:
        curves = {s: read_curve(p) for s in seeds if (p := out / "control_suite" / f"{task}-s{s}.csv").exists()}
        done = {s: c for s, c in curves.items() if c and c[-1]["env_steps"] >= steps}
        peers = " | ".join("-" if v is None else str(v) for v in PEERS.get(task, (None, None, None)))
        sac = [c[-1]["eval_return_mean"] for s in seeds
               if (p := out / "control_suite" / "sb3-sac" / f"{task}-s{s}.csv").exists()
               and (c := read_curve(p)) and c[-1]["env_steps"] >= steps]
        peers += f" | {statistics.fmean(sac):.0f} (n={len(sac)})" if sac else " | -"
        if not done:
            print(f"| {task} | {peers} | (not run) | | |")
            continue
        last = [c[-1]["eval_return_mean"] for c in done.values()]
        walls = [c[-1]["wall_seconds"] for c in done.values()]
        finals[task] = statistics.fmean(last)
        sd = statistics.stdev(last) if len(last) > 1 else 0.0
        wall = statistics.fmean(walls)
        print(f"| {task} | {peers} | {finals[task]:.0f} ± {sd:.0f} (seeds {','.join(map(str, done))}) | "
              f"{wall / 60:.0f} min | {steps / wall:.1f} |")
    print(f"\n{SOURCES}")
    if finals:
        finals["mean"] = statistics.fmean(finals.values())
    return finals


def plot(tasks: list[str], seeds: list[int], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(tasks), 4)
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        for s in seeds:
            p = out / "control_suite" / f"{task}-s{s}.csv"
            if p.exists():
                c = read_curve(p)
                ax.plot([r["env_steps"] for r in c], [r["eval_return_mean"] for r in c], label=f"seed {s}")
        for s in seeds:
            p = out / "control_suite" / "sb3-sac" / f"{task}-s{s}.csv"
            if p.exists():
                c = read_curve(p)
                ax.plot([r["env_steps"] for r in c], [r["eval_return_mean"] for r in c], ls="--",
                        label=f"SB3 SAC here, seed {s}")
        peers = PEERS.get(task, (None, None, None))
        for v, name, style in zip(peers, ("SAC", "TD-MPC2", "MR.Q"), (":", "--", "-."), strict=True):
            if v is not None:
                ax.axhline(v, ls=style, c="gray", lw=1, label=f"{name} @100k")
        ax.set_title(task)
        ax.set_xlabel("env steps (decisions)")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)  # a fresh --out with no CSVs yet still gets its (empty) figure
    path = out / "control_suite.png"
    fig.savefig(path, dpi=90)
    return path


def thread_share(extra: list[str], parallel: int, cores: int) -> list[str]:
    """The overrides with `run.torch_threads` set to each run's share of the cores when runs go side by side and
    none was given: at the default (one thread per core) two runs on 2 cores slowed each other more than 2x, at one
    thread each they run at ~0.75x of one alone (benchmarks/RESULTS.md, finger-spin / reacher-easy)."""
    if parallel <= 1 or any(x.startswith("run.torch_threads=") for x in extra):
        return extra
    return [*extra, f"run.torch_threads={max(1, cores // parallel)}"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(SIX))
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--backend", choices=["inline", "ray"], default="inline")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--runs", default=str(Path(__file__).parents[1] / "runs" / "control_suite"))
    p.add_argument("--dry", action="store_true", help="only print the table of what is there")
    args, extra = p.parse_known_args()
    from ami.cluster.inline import usable_cores  # the rule run.torch_threads=0 uses (one thread per core)

    extra = thread_share(extra, args.parallel, usable_cores())
    tasks, seeds = args.tasks.split(","), [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    if not args.dry:
        jobs = [(t, s) for s in seeds for t in tasks]
        with ThreadPoolExecutor(args.parallel) as pool:
            for f in [pool.submit(run_one, t, s, args, extra) for t, s in jobs]:
                f.result()
    out = Path(args.out)
    finals = table(tasks, seeds, out, args.steps)
    print(f"curves: {plot(tasks, seeds, out)}; {time.perf_counter() - t0:.0f} s")
    print(json.dumps({k: round(v, 1) for k, v in finals.items()}))


if __name__ == "__main__":
    main()
