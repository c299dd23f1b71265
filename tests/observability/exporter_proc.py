"""A stand-in ami process for the Prometheus test: its own exporter, sample values through the role helpers.

    python tests/observability/exporter_proc.py ROLE ENV_ID ACTOR_ID|-
Prints its Target as one JSON line, then records values every 0.1 s until stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading

from cluster.exporter import ExporterConfig, start_process_metrics


def record(pm, role: str, k: int) -> None:
    if role == "actor":
        pm.actor.step(4)
        pm.actor.plan(0.001 * (k % 30), planned_cost=-float(k))
        pm.actor.segment()
        if k % 3 == 0:
            pm.actor.episodes([(-float(k % 7), 200)])
        pm.actor.weights(used=k // 5, latest=k // 5 + 1, latency_s=0.01 * (k % 5) if k % 5 == 0 else None)
        pm.actor.paused(0.01)
        pm.replay.observe_client({"dropped_transitions": k // 3, "write_retries": k // 10,
                                  "buffered_transitions": 8.0})
    elif role == "learner":
        losses = {f"loss_{t}": 1.0 / k for t in ("prediction", "variance", "covariance", "z", "cost", "done",
                                                 "critic", "total", "policy")}
        pm.learner.update({**losses, "grad_norm": 0.5, "embed_std_min": 0.4, "embed_std_mean": 0.9,
                           "effective_rank": 12.0, "q_scale": 1.0}, n=2, seconds=0.02)
        if k % 5 == 0:
            pm.learner.published(k // 5)
        if k % 20 == 0:
            pm.learner.checkpoint_saved()
        pm.replay.observe_client({"corrupt_skipped": k // 20})


def main() -> None:
    role, env_id, actor = sys.argv[1:4]
    cfg = ExporterConfig(bind_host="127.0.0.1")
    pm = start_process_metrics(role, env_id, None if actor == "-" else int(actor), cfg)
    print(json.dumps(pm.target.to_dict()), flush=True)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    k = 0
    while not done.wait(0.1):
        k += 1
        record(pm, role, k)
    pm.close()


if __name__ == "__main__":
    main()
