"""Write the Grafana dashboards of ami from one description, against the metric names of telemetry/metrics.py.

    python deploy/grafana/generate.py          # rewrite deploy/grafana/dashboards/*.json
    python deploy/grafana/generate.py --check  # exit 1 if the committed JSON differs from what this writes

Every metric in telemetry.metrics.CATALOG is shown in some panel and every panel names only CATALOG metrics
(tests/observability checks both, and runs every expression against a real Prometheus).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "dashboards"

RUN = 'env_id=~"$env_id"'
ACT = 'env_id=~"$env_id", actor_id=~"$actor_id"'
RI = "$__rate_interval"


def rate(name: str, sel: str = RUN, by: str = "") -> str:
    agg = f"sum by ({by})" if by else "sum"
    return f"{agg} (rate({name}{{{sel}}}[{RI}]))"


def quantiles(name: str, sel: str, by: str = "") -> list[tuple[str, str]]:
    keys = f"le, {by}" if by else "le"
    pre = f"{{{{{by}}}}} " if by else ""
    return [(f"histogram_quantile({q}, sum by ({keys}) (rate({name}_bucket{{{sel}}}[{RI}])))", f"{pre}p{int(q * 100)}")
            for q in (0.5, 0.9, 0.99)]


def mean_of(name: str, sel: str, by: str = "") -> str:
    return f"{rate(name + '_sum', sel, by)} / {rate(name + '_count', sel, by)}"


GOAL_ONLY = frozenset({"ami-goals"})
"""Dashboards whose series exist only in goal-task runs (success rate) and H-JEPA runs (level-2 losses)."""

# dashboard uid -> (title, [(panel title, unit, [(expr, legend)])])
DASHBOARDS: dict[str, tuple[str, list]] = {
    "ami-overview": ("ami / overview", [
        ("Env steps per second", "ops", [(rate("ami_actor_env_steps_total"), "all actors")]),
        ("Run progress", "short", [(f"ami_driver_env_steps{{{RUN}}}", "env steps"),
                                   (f"ami_driver_target_env_steps{{{RUN}}}", "target")]),
        ("Episode return (training)", "short", [(mean_of("ami_actor_episode_return", RUN), "mean"),
                                                (f"max(ami_actor_episode_return_last{{{RUN}}})", "best last")]),
        ("Evaluation return", "short", [(f"ami_driver_eval_return_mean{{{RUN}}}", "mean"),
                                        (f"ami_driver_eval_return_std{{{RUN}}}", "std"),
                                        (f"ami_driver_evals_total{{{RUN}}}", "evaluations")]),
        ("Episodes", "short", [(f"ami_driver_episodes{{{RUN}}}", "episodes"),
                               (rate("ami_actor_episodes_total"), "per second")]),
        ("Updates per second", "ops", [(rate("ami_learner_updates_total"), "learner"),
                                       (f"ami_driver_updates_per_second{{{RUN}}}", "driver (smoothed)")]),
        ("Processes", "short", [(f"ami_driver_live_actors{{{RUN}}}", "live actors"),
                                (f"ami_driver_pending_actors{{{RUN}}}", "pending actors (no node with free CPUs)"),
                                (f"ami_driver_discovery_targets{{{RUN}}}", "discovered targets"),
                                (f"sum by (role) (up{{{RUN}}})", "up {{role}}")]),
        ("Crashed processes restarted", "short", [(f"sum by (process) (ami_driver_restarts_total{{{RUN}}})",
                                                   "{{process}}")]),
        ("Redis outage (actors and learner wait)", "s", [(f"ami_driver_redis_unreachable_seconds{{{RUN}}}",
                                                          "unreachable for")]),
    ]),
    "ami-world-model": ("ami / world model", [
        ("JEPA losses", "short", [(f'ami_learner_loss{{{RUN}, term=~"prediction|variance|covariance|z"}}',
                                   "{{term}}")]),
        ("Cost, critic and policy losses", "short",
         [(f'ami_learner_loss{{{RUN}, term=~"cost|done|critic|policy"}}', "{{term}}")]),
        ("Total loss", "short", [(f'ami_learner_loss{{{RUN}, term="total"}}', "total")]),
        ("Collapse health: embedding std", "short", [(f"ami_learner_embedding_std_min{{{RUN}}}", "min over dims"),
                                                     (f"ami_learner_embedding_std_mean{{{RUN}}}", "mean")]),
        ("Collapse health: effective rank", "short", [(f"ami_learner_effective_rank{{{RUN}}}", "effective rank")]),
        ("Gradient norm", "short", [(f"ami_learner_grad_norm{{{RUN}}}", "grad norm")]),
        ("Update duration", "s", quantiles("ami_learner_update_duration_seconds", RUN)),
        ("Updates and checkpoint age", "short", [(f"ami_learner_updates_total{{{RUN}}}", "updates"),
                                                 (f"ami_learner_checkpoint_age_seconds{{{RUN}}}", "checkpoint age s")]),
    ]),
    "ami-goals": ("ami / goal reaching and H-JEPA", [
        ("Evaluation success rate", "percentunit", [(f"ami_driver_eval_success_rate{{{RUN}}}", "success rate")]),
        ("Level-2 (H-JEPA) losses", "short", [(f"ami_learner_level2_loss{{{RUN}}}", "{{term}}")]),
        ("Level-1 prediction loss", "short", [(f'ami_learner_loss{{{RUN}, term="prediction"}}', "level 1")]),
    ]),
    "ami-replay": ("ami / replay", [
        ("Replay size", "short", [(f"ami_replay_size_transitions{{{RUN}}}", "stored"),
                                  (f"ami_replay_capacity_transitions{{{RUN}}}", "capacity")]),
        ("Inserts, samples, evictions per second", "ops",
         [(rate("ami_replay_inserts_total"), "transitions inserted"),
          (rate("ami_replay_samples_total"), "windows sampled"),
          (rate("ami_replay_evicted_transitions_total"), "transitions evicted")]),
        ("Samples per insert", "short",
         [(f"ami_replay_samples_per_insert{{{RUN}}}", "since start"),
          (f"{rate('ami_replay_samples_total')} / {rate('ami_replay_inserts_total')}", "now")]),
        ("Dropped and corrupt", "short",
         [(rate("ami_replay_dropped_transitions_total", RUN, "role"), "dropped {{role}}"),
          (rate("ami_replay_corrupt_skipped_total", RUN, "role"), "corrupt skipped {{role}}"),
          (rate("ami_replay_write_retries_total", RUN, "role"), "write retries {{role}}")]),
        ("Writer buffers", "short",
         [(f"sum by (role) (ami_replay_buffered_transitions{{{RUN}}})", "buffered {{role}}")]),
    ]),
    "ami-weights": ("ami / weights and lag", [
        ("Weights version", "short", [(f"ami_learner_weights_version{{{RUN}}}", "published"),
                                      (f"min(ami_actor_weights_version{{{RUN}}})", "oldest in use")]),
        ("Lag behind the learner (versions)", "short",
         [(f"max(ami_weights_lag_versions{{{RUN}}})", "max"), (f"avg(ami_weights_lag_versions{{{RUN}}})", "mean")]),
        ("Broadcast latency (publish -> acting)", "s", quantiles("ami_weights_broadcast_latency_seconds", RUN)),
        ("Snapshots per second", "ops", [(rate("ami_learner_snapshots_total"), "published")]),
        ("Actors paused for the learner", "percentunit", [(rate("ami_actor_paused_seconds_total", RUN, "actor_id"),
                                                          "actor {{actor_id}}")]),
    ]),
    "ami-actors": ("ami / actors", [
        ("Env steps per second", "ops", [(rate("ami_actor_env_steps_total", ACT, "actor_id"), "actor {{actor_id}}")]),
        ("Episode return", "short", [(mean_of("ami_actor_episode_return", ACT, "actor_id"), "mean {{actor_id}}"),
                                     (f"ami_actor_episode_return_last{{{ACT}}}", "last {{actor_id}}")]),
        ("Episodes", "short", [(f"ami_actor_episodes_total{{{ACT}}}", "actor {{actor_id}}")]),
        ("Planning latency", "s", quantiles("ami_actor_planning_latency_seconds", ACT, "actor_id")),
        ("Planned cost", "short", [(f"ami_actor_planned_cost{{{ACT}}}", "actor {{actor_id}}")]),
        ("Segments per second", "ops", [(rate("ami_actor_segments_total", ACT, "actor_id"), "actor {{actor_id}}")]),
        ("Weights version and lag", "short", [(f"ami_actor_weights_version{{{ACT}}}", "version {{actor_id}}"),
                                              (f"ami_weights_lag_versions{{{ACT}}}", "lag {{actor_id}}")]),
        ("Broadcast latency", "s", quantiles("ami_weights_broadcast_latency_seconds", ACT, "actor_id")),
        ("Paused for the learner, waiting on the step budget", "percentunit",
         [(rate("ami_actor_paused_seconds_total", ACT, "actor_id"), "learner {{actor_id}}"),
          (rate("ami_actor_budget_wait_seconds_total", ACT, "actor_id"), "budget {{actor_id}}")]),
        ("Replay writer", "short",
         [(f"ami_replay_buffered_transitions{{{ACT}}}", "buffered {{actor_id}}"),
          (rate("ami_replay_dropped_transitions_total", ACT, "actor_id"), "dropped/s {{actor_id}}")]),
    ]),
}

DS = {"type": "prometheus", "uid": "${datasource}"}


def variables(with_actor: bool) -> list[dict]:
    out = [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
           {"name": "env_id", "type": "query", "datasource": DS, "label": "Env",
            "query": {"query": "label_values(ami_actor_env_steps_total, env_id)", "refId": "env"},
            "definition": "label_values(ami_actor_env_steps_total, env_id)", "refresh": 2,
            "includeAll": True, "allValue": ".*", "multi": True}]
    if with_actor:
        q = f"label_values(ami_actor_env_steps_total{{{RUN}}}, actor_id)"
        out.append({"name": "actor_id", "type": "query", "datasource": DS, "label": "Actor",
                    "query": {"query": q, "refId": "actor"}, "definition": q, "refresh": 2, "sort": 3,
                    "includeAll": True, "allValue": ".*", "multi": True})
    return out


def panel(i: int, title: str, unit: str, exprs: list[tuple[str, str]]) -> dict:
    return {"id": i + 1, "type": "timeseries", "title": title, "datasource": DS,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
            "targets": [{"datasource": DS, "expr": e, "legendFormat": leg, "refId": chr(65 + j)}
                        for j, (e, leg) in enumerate(exprs)]}


def dashboard(uid: str, title: str, panels: list) -> dict:
    return {"uid": uid, "title": title, "tags": ["ami"], "editable": True, "schemaVersion": 39,
            "timezone": "browser", "refresh": "10s", "time": {"from": "now-30m", "to": "now"},
            "templating": {"list": variables(uid == "ami-actors")},
            "links": [{"type": "dashboards", "tags": ["ami"], "asDropdown": True, "title": "ami"}],
            "panels": [panel(i, *p) for i, p in enumerate(panels)]}


def expressions(dash: dict) -> list[str]:
    """Every PromQL of a dashboard: panel targets and template-variable queries."""
    out = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    return out + [v["definition"] for v in dash["templating"]["list"] if "definition" in v]


def metric_names(expr: str, catalog) -> set[str]:
    """CATALOG names an expression reads (a histogram's _bucket/_sum/_count count as the histogram)."""
    series = {n: s.name for s in catalog for n in s.series}
    return {series.get(t, t) for t in re.findall(r"\bami_[a-z0-9_]+", expr)}


def check_catalog(dashboards: list[dict], catalog) -> list[str]:
    """Problems: names not in the catalog, catalog metrics no panel shows."""
    used = {n for d in dashboards for e in expressions(d) for n in metric_names(e, catalog)}
    known = {s.name for s in catalog}
    return ([f"unknown metric {n}" for n in sorted(used - known)]
            + [f"metric {n} is on no dashboard" for n in sorted(known - used)])


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{uid.removeprefix('ami-')}.json": json.dumps(dashboard(uid, t, p), indent=2) + "\n"
            for uid, (t, p) in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare with the files on disk")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from ami.telemetry.metrics import CATALOG

    problems = check_catalog([dashboard(u, t, p) for u, (t, p) in DASHBOARDS.items()], CATALOG)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    stale = []
    for name, text in render().items():
        path = OUT / name
        if a.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"stale dashboards (run python deploy/grafana/generate.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
