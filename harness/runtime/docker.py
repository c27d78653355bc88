"""The Docker engine, through the docker SDK: a client with a clear error when no engine runs."""

from __future__ import annotations

import functools

import docker
from docker.errors import DockerException

from harness.errors import InfrastructureError

FIX = (
    "start a Docker engine: apt-get install -y docker.io && (dockerd >/var/log/dockerd.log 2>&1 &) "
    "-- or run ./install.sh"
)


@functools.cache
def client() -> docker.DockerClient:
    try:
        c = docker.from_env(timeout=120)
        c.ping()
    except DockerException as exc:
        raise InfrastructureError(
            f"cannot reach the Docker engine ({exc.__class__.__name__}): {FIX}"
        ) from None
    return c
