"""What a deploy puts on a node: the user's app directory copied over the node's app (the release
it replaces is kept at /srv/app.previous), laid out as `app:` on a service is; or the node
recreated from a local image."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from docker.errors import APIError
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


def recreate(c: Container, inst: str, image: str, files: list[str], timeout: int) -> Container:
    """The node again, from `image`: stopped and removed, then created with the same name,
    hostname, command, environment, labels (the run's, so teardown and gc find it), limits,
    network address and aliases, the harness's config `files` copied over from the old one,
    and started. The image's own app is what it serves."""
    c.reload()
    cfg, host = c.attrs["Config"], c.attrs["HostConfig"]
    [(net, ep)] = c.attrs["NetworkSettings"]["Networks"].items()
    ip = (ep.get("IPAMConfig") or {}).get("IPv4Address") or ep["IPAddress"]
    # the engine adds the container's short id as an alias; the new one gets its own
    aliases = [a for a in ep.get("Aliases") or [] if not (c.id or "").startswith(a)]
    kept = {}
    for path in files:
        bits, _ = c.get_archive(path)
        kept[path] = b"".join(bits)
    api = c.client.api
    try:
        c.stop(timeout=timeout)
        c.remove()
        created = api.create_container(
            image=image,
            name=c.name,
            hostname=cfg.get("Hostname"),
            command=cfg.get("Cmd"),
            environment=cfg.get("Env"),
            labels=cfg.get("Labels"),
            host_config=api.create_host_config(
                cap_add=host.get("CapAdd") or None,
                nano_cpus=host.get("NanoCpus") or None,
                mem_limit=host.get("Memory") or None,
                init=False,
            ),
            networking_config=api.create_networking_config(
                {net: api.create_endpoint_config(ipv4_address=ip, aliases=aliases)}
            ),
        )
        new = c.client.containers.get(created["Id"])
        for path, data in kept.items():
            new.put_archive(path.rsplit("/", 1)[0] or "/", data)
        new.start()
    except APIError as exc:
        raise InfrastructureError(
            f"recreating {inst} from {image} failed: {exc.explanation}"
        ) from None
    return new
