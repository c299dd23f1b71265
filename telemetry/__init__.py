"""Telemetry, the ground floor every role reports through: the metric catalogue, per-process exporters and the
run's discovery for Prometheus."""
