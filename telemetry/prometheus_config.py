"""The Prometheus config of one machine or a Ray head node: `ami prometheus-config` prints it with the caller's
discovery directory (telemetry/discovery.py), and deploy/prometheus/prometheus.yml is its output for the
placeholder directory /tmp/ami-UID/prometheus (a test keeps the two equal). Generated rather than shipped as
is because the directory is per user and Prometheus expands no variables in file_sd paths."""

from __future__ import annotations

PLACEHOLDER = "/tmp/ami-UID/prometheus"
"""The directory deploy/prometheus/prometheus.yml names, for the uid of whoever runs ami."""

TEMPLATE = """\
# Prometheus for ami on one machine or a Ray head node (Kubernetes: deploy/k8s/prometheus.yaml).
#   ami prometheus-config > prometheus.yml && prometheus --config.file=prometheus.yml
# (this file is that command's output for the placeholder {placeholder}: ami writes to
# /tmp/ami-<your uid>/prometheus, or $AMI_PROMETHEUS_SD_DIR, which the command fills in.)
# No hand-written targets: every `ami train` driver writes the live targets of its run (driver, learner, every
# actor on every node, each on its own kernel-chosen port) to <that directory>/<run>.json and rewrites it
# atomically as actors start, stop or are added; Ray writes its own file the same way.
global:
  scrape_interval: 5s
  evaluation_interval: 5s

scrape_configs:
  - job_name: ami
    # Series carry their own role/actor_id/env_id labels; keep them rather than prefixing "exported_".
    honor_labels: true
    file_sd_configs:
      - files: ["{directory}/*.json"]
        refresh_interval: 5s

  - job_name: ray
    # Ray's metrics agents (one per node), found through the file Ray keeps on the head node.
    file_sd_configs:
      - files: ["/tmp/ray/prom_metrics_service_discovery.json"]
        refresh_interval: 30s
"""


def prometheus_config(directory: str) -> str:
    """The config text whose ami job globs `directory`/*.json."""
    if any(c in directory for c in '"*\n'):
        raise ValueError(f"discovery directory {directory!r}: no quotes, '*' or newlines in it")
    return TEMPLATE.format(placeholder=PLACEHOLDER, directory=directory)
