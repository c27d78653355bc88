"""Prometheus for the run: the harness's own exporter and the query client."""
