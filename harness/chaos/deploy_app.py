"""What a deploy puts on a node: the user's app directory copied over the node's app (the release
it replaces is kept at /srv/app.previous), laid out as `app:` on a service is; or the node
recreated from a local image."""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from harness.errors import InfrastructureError
from harness.plan.model import RunPlan
from harness.runtime.stack import create

APP_ROOT = "/srv/app"
PREVIOUS = "/srv/app.previous"


def app_tar(src: Path) -> tuple[str, bytes]:
    """(where to unpack, tar) for a user's app dir, laid out as `app:` on a service is: a
    directory with public/ becomes /srv/app, else it is the document root /srv/app/public."""
    dest = APP_ROOT if (src / "public").is_dir() else f"{APP_ROOT}/public"
    buf = io.BytesIO()

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode |= 0o755 if info.isdir() else 0o644
        return info

    with tarfile.open(fileobj=buf, mode="w") as tar:
        for child in sorted(src.iterdir()):
            tar.add(child, arcname=child.name, filter=owned)
    return dest, buf.getvalue()


def install_app(c: Container, inst: str, app: Path) -> None:
    """Move the node's app aside and copy `app` in its place (the node is restarted after)."""
    dest, data = app_tar(app)
    code, out = c.exec_run(
        [
            "sh",
            "-c",
            f"rm -rf {PREVIOUS} && mv {APP_ROOT} {PREVIOUS} && mkdir -p {dest}"
            + (f" && cp -a {PREVIOUS}/. {APP_ROOT}/" if dest != APP_ROOT else ""),
        ]
    )
    if code != 0:
        raise InfrastructureError(
            f"cannot move the app aside in {inst}: {out.decode(errors='replace')[-200:]}"
        )
    if not c.put_archive(dest, data):
        raise InfrastructureError(f"cannot copy {app} into {inst}")


def recreate(c: Container, plan: RunPlan, inst: str, image: str, timeout: int) -> Container:
    """The node again, from `image`, made as bring-up makes it (runtime/stack.create: the plan's
    command and environment, the run's labels, limits, address, aliases and config files; not
    the plan's `app:` dirs, the image's own app is what it serves). Nothing is taken from the old
    container, whose Config holds its image's ENV, CMD and LABELs merged in. The old one is
    stopped and set aside under another name until the new one runs, then removed; when the new
    one cannot be created or started, it is removed and the old one started again in its place,
    and the error raised: the node is never left gone."""
    c.reload()
    [network] = c.attrs["NetworkSettings"]["Networks"]
    name = c.name or ""
    try:
        c.stop(timeout=timeout)
        c.rename(f"{name}-replaced")  # still the run's labels: teardown finds it
    except APIError as exc:
        raise InfrastructureError(f"cannot set {inst} aside: {exc.explanation}") from None
    try:
        new = create(plan, plan.container(inst), image, network, dirs=False)
        new.start()
    except (APIError, InfrastructureError) as exc:
        why = exc.explanation if isinstance(exc, APIError) else str(exc)
        _reinstate(c, name, inst, f"recreating {inst} from {image} failed ({why})")
        raise InfrastructureError(
            f"recreating {inst} from {image} failed ({why}); the old container runs again"
        ) from None
    with contextlib.suppress(APIError):  # if it stays, the run's teardown removes it
        c.remove()
    return new


def _reinstate(old: Container, name: str, inst: str, failure: str) -> None:
    """The old container back under its name and started, the new one (if any) removed."""
    try:
        with contextlib.suppress(NotFound):
            old.client.containers.get(name).remove(force=True)
        old.rename(name)
        old.start()
    except APIError as exc:
        raise InfrastructureError(
            f"{failure}, and starting the old container again failed too ({exc.explanation}): "
            f"{inst} is down"
        ) from None
