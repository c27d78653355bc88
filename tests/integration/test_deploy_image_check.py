"""`deploy: {image: NAME}` is refused before anything starts when the image is not on this
machine, asked of the real Docker engine (tests/unit/chaos/test_deploy_validation.py stands one
in); an image the engine has is accepted. No container is started."""

from __future__ import annotations

import secrets
from pathlib import Path

import docker
import pytest

from harness.plan.check import load_topology
from tests.unit.chaos.test_deploy_validation import HEAD, TAIL, problems

pytestmark = pytest.mark.docker


def deploy(image: str) -> str:
    return (
        f"  - name: deploy\n    at: 2s\n    fault: {{deploy: {{service: web, image: '{image}'}}}}\n"
    )


def test_an_image_the_engine_lacks_is_refused_and_one_it_has_is_not(tmp_path: Path) -> None:
    absent = f"harness-absent-{secrets.token_hex(4)}:v2"
    [(line, field, msg)] = problems(tmp_path, deploy(absent))
    assert (line, field) == (12, "chaos[0].fault.deploy.image")
    assert f"no image '{absent}' on this machine" in msg and f"docker build -t {absent}" in msg

    engine = docker.from_env()
    present = next(tag for image in engine.images.list(name="harness/web") for tag in image.tags)
    path = tmp_path / "ok.yaml"
    path.write_text(HEAD + deploy(present) + TAIL)
    assert load_topology(path).chaos[0].fault.params.image == present
