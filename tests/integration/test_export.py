"""The exported stack against the real orchestrators: `harness export compose` of ha.yaml comes
up with Debian's docker-compose 1.29 (every healthcheck healthy, the static addresses the plan
gave, Keepalived floating the VIP) and answers through its load balancer; the same export's
docker-stack.yml deploys on a single-node swarm this test initialises and leaves again, and
answers through the LB service's published port. Everything carries the export's run id and is
removed in `finally`, whatever failed."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from harness.export import export_compose
from harness.runner import build_images
from harness.runtime.stack import free_subnets, teardown
from harness.spec.loader import load_topology
from tests.integration.helpers import REPO, leftovers

pytestmark = pytest.mark.docker
HA = REPO / "topologies" / "ha.yaml"
COMPOSE = shutil.which("docker-compose")


def sh(*cmd: str, cwd: Path, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        list(cmd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    if COMPOSE is None:
        pytest.fail("docker-compose is not installed (./install.sh --dev installs it)")
    build_images(load_topology(HA, require_assertions=False), lambda m: None, HA.parent)
    out = tmp_path_factory.mktemp("export")
    summary = export_compose(HA, out, subnet=free_subnets()[-1])
    yield out, summary


def _health(run_id: str) -> dict[str, str]:
    client = docker.from_env()
    found = {}
    for c in client.containers.list(all=True, filters={"label": f"io.harness.run={run_id}"}):
        found[c.labels["io.harness.instance"]] = (c.attrs["State"].get("Health") or {}).get(
            "Status", c.status
        )
    return found


def test_compose_export_comes_up_healthy_on_its_addresses_and_serves_through_the_vip(
    exported: tuple[Path, dict],
) -> None:
    out, summary = exported
    run_id, project = summary["run_id"], f"hx{summary['run_id'].replace('-', '')}"
    doc = (out / "docker-compose.yml").read_text()
    try:
        up = sh(COMPOSE or "docker-compose", "-p", project, "up", "-d", cwd=out)
        assert up.returncode == 0, up.stderr[-2000:]
        deadline, health = time.monotonic() + 120, {}
        while time.monotonic() < deadline:
            health = _health(run_id)
            if len(health) == 9 and all(s == "healthy" for s in health.values()):
                break
            time.sleep(1)
        assert len(health) == 9 and set(health.values()) == {"healthy"}, health
        # The addresses the plan gave are the containers' addresses.
        client = docker.from_env()
        for c in client.containers.list(filters={"label": f"io.harness.run={run_id}"}):
            [net] = c.attrs["NetworkSettings"]["Networks"].values()
            assert f"ipv4_address: {net['IPAddress']}" in doc, c.name
        # Keepalived elects as under `harness up`: the VIP settles on lb-1 (highest priority),
        # possibly after lb-2 held it for a moment; the harness's baseline waits for this too.
        vip = summary["vips"]["lb"]
        lbs_c = [
            c
            for c in client.containers.list(filters={"label": f"io.harness.run={run_id}"})
            if c.labels["io.harness.service"] == "lb"
        ]

        def holders() -> list[str]:
            return sorted(
                c.labels["io.harness.instance"]
                for c in lbs_c
                if vip in c.exec_run(["ip", "-4", "addr"]).output.decode()
            )

        deadline = time.monotonic() + 30
        while holders() != ["lb-1"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert holders() == ["lb-1"]
        served, lbs = set(), set()
        for _ in range(30):
            r = httpx.get(f"{summary['load_url']}/health", timeout=2)
            assert r.status_code == 200, r.text
            served.add(r.headers["x-served-by"])
            lbs.add(r.headers["x-lb"])
        assert served == {"web-1", "web-2", "web-3"}, served  # HAProxy round-robins all three
        assert lbs == {"lb-1"}, lbs  # the VIP holder answers
    finally:
        down = sh(COMPOSE or "docker-compose", "-p", project, "down", "-v", "-t", "2", cwd=out)
        teardown(run_id)  # whatever Compose could not remove, by the run's label
        assert down.returncode == 0, down.stderr[-2000:]
    assert leftovers(run_id) == []


def _swarm_converged(stack: str) -> tuple[bool, str]:
    ls = subprocess.run(
        ["docker", "stack", "services", stack, "--format", "{{json .}}"],
        capture_output=True,
        text=True,
    ).stdout
    rows = [json.loads(line) for line in ls.splitlines() if line.strip()]
    reps = {r["Name"]: r["Replicas"] for r in rows}
    ok = bool(reps) and all(r.split("/")[0] == r.split("/")[1].split()[0] for r in reps.values())
    return ok, str(reps)


def test_stack_export_deploys_on_a_single_node_swarm_and_serves_through_the_lb_service(
    exported: tuple[Path, dict],
) -> None:
    out, summary = exported
    client = docker.from_env()
    if client.info().get("Swarm", {}).get("LocalNodeState") != "inactive":
        pytest.fail("this engine is already part of a swarm: the test initialises its own")
    stack = f"hx{summary['run_id'].replace('-', '')[-8:]}"
    try:
        init = sh("docker", "swarm", "init", "--advertise-addr", "127.0.0.1", cwd=out)
        assert init.returncode == 0, init.stderr
        dep = sh("docker", "stack", "deploy", "-c", "docker-stack.yml", stack, cwd=out)
        assert dep.returncode == 0, dep.stderr[-2000:]
        deadline, state = time.monotonic() + 150, ""
        while time.monotonic() < deadline:
            ok, state = _swarm_converged(stack)
            if ok:
                break
            time.sleep(2)
        assert ok, state
        assert f"{stack}_lb" in state and "2/2" in state  # the LB pair: one service, 2 replicas
        # Through the LB service's name from inside the stack's overlay (a web task): the
        # service address that replaces the Keepalived VIP.
        [web] = client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={stack}_web-1"}
        )
        served, lbs = set(), set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(served) < 3 or len(lbs) < 2):
            code, output = web.exec_run(["curl", "-si", "-m", "2", "http://lb/health"])
            head = output.decode(errors="replace").lower()
            if code == 0 and " 200 " in head.splitlines()[0]:
                hdr = dict(line.split(": ", 1) for line in head.splitlines()[1:] if ": " in line)
                served.add(hdr["x-served-by"].strip())
                lbs.add(hdr["x-lb"].strip())
            else:
                time.sleep(0.5)
        # DNS round robin spreads requests over both LB replicas, and each reaches all
        # three web nodes by name.
        assert served == {"web-1", "web-2", "web-3"}, served
        assert len(lbs) == 2, lbs
        labelled = client.services.list(filters={"label": f"io.harness.run={summary['run_id']}"})
        assert len(labelled) == 8
    finally:
        sh("docker", "stack", "rm", stack, cwd=out)
        for _ in range(30):
            gone = sh(
                "docker",
                "ps",
                "-aq",
                "--filter",
                f"label=com.docker.stack.namespace={stack}",
                cwd=out,
            )
            if not gone.stdout.strip():
                break
            time.sleep(1)
        leave = sh("docker", "swarm", "leave", "--force", cwd=out)
        sh("docker", "network", "rm", "docker_gwbridge", cwd=out)
        assert leave.returncode == 0, leave.stderr
    assert client.info()["Swarm"]["LocalNodeState"] == "inactive"
