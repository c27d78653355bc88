"""What a deploy puts on a node: the user's app directory copied over the node's app (the release
it replaces is kept at /srv/app.previous), laid out as `app:` on a service is."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from docker.models.containers import Container

from harness.errors import InfrastructureError

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
