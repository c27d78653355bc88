"""`harness export k8s`: the plan as Kubernetes manifests, the way the PHP scaling guides lay a
stack out: stateless tiers (load balancers, Prometheus, the Toxiproxy link) as Deployments behind
a Service, the web nodes and the data tier as StatefulSets behind a headless Service (so an
instance keeps a DNS name, `web-0.web`, that HAProxy's server lines and the app's DSNs use),
one ConfigMap per service with its rendered files, an Ingress to the load balancer's Service
(which replaces the Keepalived VIP), an HPA on the web tier, readiness/liveness probes from each
container's readiness wait, and resource requests. Faults go to chaos/ as Chaos Mesh objects.

What has no counterpart is listed in NO_COUNTERPART and written to the output's README."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from harness.export.chaos_mesh import chaos_objects
from harness.export.compose import file_key
from harness.export.plan import Exported, k8s_name, lb_services, name_plan
from harness.kinds import descriptor
from harness.plan.model import ContainerPlan, Wait
from harness.roles import FACTS, Role, kinds_of, role
from harness.runtime import labels

# Stateless roles no config addresses one instance of: Deployments behind a ClusterIP Service.
DEPLOYMENT_KINDS = kinds_of(Role.LOAD_BALANCER, Role.OBSERVER, Role.PROXY)
DEFAULT_REQUESTS = {"cpu": "100m", "memory": "128Mi"}
NO_COUNTERPART = [
    "Keepalived VIPs: the load balancer's Service (and the Ingress in front of it) is the "
    "stable address; Kubernetes moves endpoints instead of an address.",
    "Static container addresses (network.subnet): pods get cluster addresses; every config "
    "reaches its peers by DNS name (StatefulSet pods as <service>-<n>.<service>).",
    "HAProxy's server list is rendered for the topology's replicas: the HPA may add web pods "
    "that HAProxy does not list until the config is re-rendered (or uses server-template).",
    "Per-instance settings other than NODE_NAME (taken from the pod name): the first "
    "instance's configs serve every replica.",
    "`setup` commands run after readiness: put them in an init container or a Job.",
    "The harness's own instants (Keepalived notify log, exporter gauges) and the verdict: run "
    "the harness against the cluster's load URL, or point it at the cluster's Prometheus.",
]


def address(service: str, instance: str, index: int, kinds: dict[str, str]) -> str:
    if kinds[service] in DEPLOYMENT_KINDS:
        return k8s_name(service)
    return f"{k8s_name(service)}-{index}.{k8s_name(service)}"


def probe(wait: Wait, period: int, threshold: int, delay: int = 0) -> dict[str, Any] | None:
    if wait.kind == "http":
        url = urlsplit(wait.target)
        action: dict[str, Any] = {"httpGet": {"path": url.path or "/", "port": url.port or 80}}
    elif wait.kind == "tcp":
        action = {"tcpSocket": {"port": int(wait.target.rpartition(":")[2])}}
    elif wait.kind == "file":
        action = {"exec": {"command": ["test", "-f", wait.target]}}
    elif wait.kind == "exec":
        action = {"exec": {"command": ["/bin/sh", "-c", wait.target]}}
    else:
        return None
    return {
        **action,
        "periodSeconds": period,
        "failureThreshold": threshold,
        "timeoutSeconds": 2,
        "initialDelaySeconds": delay,
    }


def _resources(c: ContainerPlan) -> dict[str, Any]:
    res: dict[str, Any] = {"requests": dict(DEFAULT_REQUESTS)}
    if c.cpus:
        res["requests"]["cpu"] = str(c.cpus)
        res["limits"] = {"cpu": str(c.cpus)}
    if c.memory:
        mem = c.memory.upper().rstrip("B")
        mem = mem[:-1] + {"K": "Ki", "M": "Mi", "G": "Gi"}[mem[-1]] if mem[-1] in "KMG" else mem
        res["requests"]["memory"] = mem
        res.setdefault("limits", {})["memory"] = mem
    return res


def _meta(exp: Exported, name: str, service: str) -> dict[str, Any]:
    lab = {
        k.replace("io.harness.", "harness.io/"): v
        for k, v in labels.for_run(exp.plan.run_id, exp.plan.topology, service).items()
    }
    return {"name": name, "labels": {"app.kubernetes.io/name": name, **lab}}


def _ports(c: ContainerPlan) -> list[int]:
    """What the kind declares it listens on, plus its readiness wait's port."""
    found = set(descriptor(c.kind).ports.values()) if c.kind in FACTS else set()
    if role(c.kind) == Role.LOAD_BALANCER:
        found.add(80)
    if c.wait.kind == "http":
        found.add(urlsplit(c.wait.target).port or 80)
    elif c.wait.kind == "tcp":
        found.add(int(c.wait.target.rpartition(":")[2]))
    return sorted(found)


def workload(
    exp: Exported, service: str, first: ContainerPlan, replicas: int
) -> list[dict[str, Any]]:
    name = k8s_name(service)
    meta = _meta(exp, name, service)
    env: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in sorted(first.env.items()) if k != "NODE_NAME"
    ]
    if "NODE_NAME" in first.env:
        env.append({"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    container: dict[str, Any] = {
        "name": name,
        "image": exp.image(first),
        "ports": [{"containerPort": p} for p in _ports(first)],
        "resources": _resources(first),
    }
    if first.command is not None:
        container["args"] = list(first.command)
    if env:
        container["env"] = env
    ready = probe(first.wait, 2, 3)
    if ready is not None:
        container["readinessProbe"] = ready
        container["livenessProbe"] = probe(first.wait, 10, 3, int(first.wait.timeout))
    pod: dict[str, Any] = {"containers": [container]}
    objs: list[dict[str, Any]] = []
    if first.files:
        cm = f"{name}-config"
        data = {
            file_key("", dest).lstrip("_"): content for dest, content in sorted(first.files.items())
        }
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {**_meta(exp, cm, service)},
                "data": data,
            }
        )
        container["volumeMounts"] = [
            {
                "name": "config",
                "mountPath": dest,
                "subPath": file_key("", dest).lstrip("_"),
                "readOnly": True,
            }
            for dest in sorted(first.files)
        ]
        pod["volumes"] = [{"name": "config", "configMap": {"name": cm}}]
    selector = {"app.kubernetes.io/name": name}
    template = {"metadata": {"labels": meta["labels"]}, "spec": pod}
    stateful = first.kind not in DEPLOYMENT_KINDS
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": selector},
        "template": template,
    }
    if stateful:
        spec["serviceName"] = name
        spec["podManagementPolicy"] = "Parallel"
    objs.append(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet" if stateful else "Deployment",
            "metadata": meta,
            "spec": spec,
        }
    )
    svc_spec: dict[str, Any] = {
        "selector": selector,
        "ports": [{"name": f"p{p}", "port": p, "targetPort": p} for p in _ports(first)],
    }
    if stateful:
        svc_spec["clusterIP"] = "None"  # headless: each pod keeps its DNS name
        svc_spec["publishNotReadyAddresses"] = True
    objs.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": svc_spec})
    return objs


def manifests(exp: Exported) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for service in exp.topology.services:
        insts = exp.plan.instances(service)
        if insts:
            objs += workload(exp, service, insts[0], len(insts))
    lbs = lb_services(exp.topology)
    if lbs:
        lb = k8s_name(lbs[0])
        objs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": _meta(exp, lb, lbs[0]),
                "spec": {
                    "rules": [
                        {
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {"name": lb, "port": {"number": 80}}
                                        },
                                    }
                                ]
                            }
                        }
                    ]
                },
            }
        )
    for service, svc in exp.topology.services.items():
        if role(svc.kind) == Role.WEB:
            name = k8s_name(service)
            objs.append(
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": _meta(exp, name, service),
                    "spec": {
                        "scaleTargetRef": {
                            "apiVersion": "apps/v1",
                            "kind": "StatefulSet",
                            "name": name,
                        },
                        "minReplicas": svc.replicas,
                        "maxReplicas": svc.replicas * 2,
                        "metrics": [
                            {
                                "type": "Resource",
                                "resource": {
                                    "name": "cpu",
                                    "target": {"type": "Utilization", "averageUtilization": 70},
                                },
                            }
                        ],
                    },
                }
            )
    return objs


def export_k8s(
    topology_file: str | Path, out: str | Path, run_id: str | None = None
) -> dict[str, Any]:
    out = Path(out)
    (out / "chaos").mkdir(parents=True, exist_ok=True)
    kinds: dict[str, str] = {}

    def addr(service: str, instance: str, index: int) -> str:
        return address(service, instance, index, kinds)

    from harness.export.plan import load
    from harness.plan.build import with_prometheus

    topo, rid, _ = load(topology_file, run_id)
    kinds.update({n: s.kind for n, s in with_prometheus(topo).services.items()})
    exp = name_plan(topology_file, rid, None, addr)
    written = []
    for obj in manifests(exp):
        fname = f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (out / fname).write_text(yaml.safe_dump(obj, sort_keys=False))
        written.append(fname)
    chaos, unmapped = chaos_objects(exp)
    for obj in chaos:
        fname = f"chaos/{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (out / fname).write_text(yaml.safe_dump(obj, sort_keys=False))
        written.append(fname)
    notes = ["# What has no Kubernetes counterpart", ""] + [f"- {n}" for n in NO_COUNTERPART]
    notes += ["", "## Faults not mapped to Chaos Mesh", ""] + [
        f"- {u}" for u in unmapped or ["none"]
    ]
    (out / "README.md").write_text("\n".join(notes) + "\n")
    return {"run_id": rid, "files": written, "unmapped": unmapped}
