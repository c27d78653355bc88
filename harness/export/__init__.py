"""Take a topology elsewhere: a Compose project (also a Swarm stack) and Kubernetes manifests,
rendered from the same plan `harness run` starts, so the configs cannot drift from what the
harness verifies. Export writes files only; nothing here talks to Docker or a cluster."""

from harness.export.compose import export_compose
from harness.export.k8s import export_k8s

__all__ = ["export_compose", "export_k8s"]
