"""testinfra `Host` objects for a run's containers, so users can check them like servers:

    from harness import host
    h = host("web-1", run_id)                        # or the `harness_host` pytest fixture
    assert h.process.filter(comm="php-fpm8.2")
    assert h.socket("tcp://0.0.0.0:80").is_listening

testinfra's `docker://` backend shells out to `docker exec` with the container's name.
"""

from __future__ import annotations

from typing import Any

import testinfra

from harness.errors import InfrastructureError
from harness.runtime import labels
from harness.runtime.docker import client


def _container_name(instance: str, run_id: str | None) -> str:
    filters = labels.run_filter(run_id)
    filters["label"].append(f"{labels.INSTANCE}={instance}")
    found = client().containers.list(filters=filters)
    if not found:
        raise InfrastructureError(
            f"no running container '{instance}'" + (f" in run {run_id}" if run_id else "")
        )
    if len(found) > 1:
        runs = sorted({c.labels.get(labels.RUN, "?") for c in found})
        raise InfrastructureError(
            f"'{instance}' exists in several runs ({', '.join(runs)}): pass run_id"
        )
    return str(found[0].name)


def host(instance: str, run_id: str | None = None) -> Any:
    """A testinfra Host for one container of a run (the only run, when run_id is None)."""
    return testinfra.get_host(f"docker://{_container_name(instance, run_id)}")


def hosts(run_id: str) -> dict[str, Any]:
    """testinfra Hosts for every running container of a run, by instance name."""
    out = {}
    for c in client().containers.list(filters=labels.run_filter(run_id)):
        out[c.labels.get(labels.INSTANCE, c.name)] = testinfra.get_host(f"docker://{c.name}")
    return out
