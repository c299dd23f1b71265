"""`ami report RUN_DIR`: learning curves from metrics.jsonl to PNG."""

from __future__ import annotations

from pathlib import Path

from ami.cluster.config import ConfigError
from ami.cluster.rundir import RunDir

PANELS = {
    "returns.png": [("eval_return_mean", "eval return"), ("episode_return_mean", "training episode return")],
    "losses.png": [("loss_prediction", "prediction"), ("loss_cost", "cost"), ("loss_critic", "critic"),
                   ("loss_variance", "variance"), ("loss_covariance", "covariance")],
    "representation.png": [("embed_std_min", "min embedding std"), ("embed_std_mean", "mean embedding std"),
                           ("effective_rank", "effective rank")],
}


def draw_report(run_dir: Path) -> list[Path]:
    """One PNG per panel group against env steps; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = RunDir(run_dir).read_metrics()
    if not lines:
        raise ConfigError(f"{run_dir}: no metrics.jsonl to report")
    out = []
    for name, series in PANELS.items():
        fig, ax = plt.subplots(figsize=(7, 4))
        drawn = False
        for key, label in series:
            pts = [(m["env_steps"], m[key]) for m in lines if key in m]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker="o" if key.startswith("eval") else None, label=label)
                drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel("env steps")
        ax.set_title(f"{run_dir.name}: {name[:-4]}")
        ax.legend()
        ax.grid(alpha=0.3)
        path = run_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        out.append(path)
    return out
