"""The exports of ha.yaml, checked offline against the real validators: docker-compose 1.29's
own schema (`docker-compose config`), the Kubernetes OpenAPI schemas (kubernetes-validate),
and the plan they come from (same addresses, same files, same waits)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from harness.cli import main
from harness.export import export_compose, export_k8s
from harness.export.compose import health_command
from harness.export.plan import address_plan, name_plan, resolve_at_runtime
from harness.plan.model import Wait

REPO = Path(__file__).resolve().parents[3]
HA = REPO / "topologies" / "ha.yaml"


@pytest.fixture(scope="module")
def compose_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("compose")
    return out, export_compose(HA, out, run_id="20260101-000000-abcd", subnet="10.213.77.0/24")


def test_compose_file_passes_docker_compose_own_validation(compose_dir: tuple[Path, dict]) -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed (./install.sh --dev installs it)")
    out, _ = compose_dir
    for name in ("docker-compose.yml", "docker-stack.yml"):
        proc = subprocess.run(
            [exe, "-f", str(out / name), "config", "-q"], capture_output=True, text=True
        )
        assert proc.returncode == 0, (name, proc.stderr)


def test_compose_services_carry_the_plans_addresses_files_and_labels(
    compose_dir: tuple[Path, dict],
) -> None:
    out, summary = compose_dir
    doc = yaml.safe_load((out / "docker-compose.yml").read_text())
    env = doc["services"]["web-1"]["environment"]
    secrets = {"db_password": env["DB_PASSWORD"], "redis_password": env["REDIS_PASSWORD"]}
    plan = address_plan(HA, summary["run_id"], "10.213.77.0/24", secrets).plan
    assert doc["networks"]["stack"]["ipam"]["config"] == [{"subnet": "10.213.77.0/24"}]
    assert (
        summary["vips"] == {"lb": "10.213.77.200"} and summary["load_url"] == "http://10.213.77.200"
    )
    for c in plan.containers:
        svc = doc["services"][c.instance]
        assert svc["networks"]["stack"]["ipv4_address"] == c.ip
        assert svc["labels"]["io.harness.run"] == summary["run_id"]
        for dest, content in c.files.items():
            [mount] = [v for v in svc["volumes"] if v.split(":")[1] == dest]
            assert (out / mount.split(":")[0]).read_text() == content
    assert "NET_ADMIN" in doc["services"]["lb-1"]["cap_add"]  # Keepalived keeps its VIP


def test_stack_collapses_the_lb_pair_into_one_replicated_service_without_keepalived(
    compose_dir: tuple[Path, dict],
) -> None:
    out, _ = compose_dir
    doc = yaml.safe_load((out / "docker-stack.yml").read_text())
    lb = doc["services"]["lb"]
    assert lb["deploy"]["replicas"] == 2 and "lb-1" not in doc["services"]
    assert {"restart_policy", "placement", "endpoint_mode"} <= set(lb["deploy"])
    assert not any("keepalived" in c["target"] for c in lb["configs"])
    cfg = (out / "configs" / "lb" / "etc" / "haproxy" / "haproxy.cfg").read_text()
    assert "server web-1 web-1:80" in cfg and "resolvers orchestrator" in cfg


def test_health_commands_quote_and_escape() -> None:
    assert health_command(Wait("file", "/run/x")) == "test -f /run/x"
    http = health_command(Wait("http", "http://10.0.0.1:9090/-/ready"))
    assert http is not None and "/dev/tcp/127.0.0.1/9090" in http and "GET /-/ready" in http
    assert health_command(Wait("none")) is None


def test_resolve_at_runtime_leaves_a_config_without_servers_alone() -> None:
    assert resolve_at_runtime("global\n") == "global\n"


@pytest.fixture(scope="module")
def k8s_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("k8s")
    return out, export_k8s(HA, out, run_id="20260101-000000-abcd")


def test_manifests_validate_against_the_kubernetes_schemas(k8s_dir: tuple[Path, dict]) -> None:
    out, summary = k8s_dir
    kinds = set()
    for name in summary["files"]:
        if name.startswith("chaos/"):
            continue
        obj = yaml.safe_load((out / name).read_text())
        kubernetes_validate.validate(obj, "1.29.0", strict=True)  # raises on any schema error
        kinds.add(obj["kind"])
    assert {
        "Deployment",
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Ingress",
        "HorizontalPodAutoscaler",
    } <= kinds


def test_manifests_probe_request_and_reach_peers_by_dns_name(k8s_dir: tuple[Path, dict]) -> None:
    out, _ = k8s_dir
    web = yaml.safe_load((out / "statefulset-web.yaml").read_text())
    [c] = web["spec"]["template"]["spec"]["containers"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 80}
    assert c["livenessProbe"]["initialDelaySeconds"] == 90
    assert c["resources"]["requests"]["cpu"]
    env = {e["name"]: e for e in c["env"]}
    assert env["DB_HOST"]["value"] == "toxiproxy"
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    lb_cm = yaml.safe_load((out / "configmap-lb-config.yaml").read_text())
    assert "server web-1 web-0.web:80" in lb_cm["data"]["etc_haproxy_haproxy.cfg"]
    assert "no Kubernetes counterpart" in (out / "README.md").read_text()


def test_faults_become_chaos_mesh_objects(k8s_dir: tuple[Path, dict]) -> None:
    out, summary = k8s_dir
    chaos = [
        yaml.safe_load((out / n).read_text()) for n in summary["files"] if n.startswith("chaos/")
    ]
    by_step = {o["metadata"]["annotations"]["harness.io/step"]: o for o in chaos}
    assert by_step["kill web-1"]["spec"]["selector"] == {"pods": {"default": ["web-0"]}}
    assert by_step["fail over the VIP"]["spec"]["action"] == "pod-kill"
    slow = by_step["slow database"]
    assert slow["kind"] == "NetworkChaos" and slow["spec"]["delay"]["latency"] == "300ms"
    assert slow["spec"]["duration"] == "6s"


def test_name_plan_renders_every_instance_by_name() -> None:
    plan = name_plan(HA, "20260101-000000-abcd", "10.213.77.0/24").plan
    web = plan.container("web-1")
    assert web.env["REDIS_HOST"] == "redis" and "10.213.77." not in "".join(web.files.values())


def test_cli_export_writes_and_a_bad_topology_exits_3(tmp_path: Path) -> None:
    assert main(["export", "compose", str(HA), "-o", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "docker-compose.yml").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nservices: {web: {kind: nope}}\n")
    assert main(["export", "k8s", str(bad), "-o", str(tmp_path / "k")]) == 3
