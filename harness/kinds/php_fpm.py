"""A bare PHP-FPM pool listening for FastCGI on :9000 (no Nginx in front of it on the node): the
shape of stacks where an Nginx LB speaks `fastcgi_pass` straight to the pool."""

from __future__ import annotations

from harness.kinds.base import Context, app_dirs, apply_overrides
from harness.kinds.descriptor import Descriptor
from harness.kinds.web import IMAGE, php_files
from harness.plan.model import ContainerPlan, Wait
from harness.spec.models import PhpFpmService

PORT = 9000
CONFIG_PATH = "/etc/php/8.2/fpm/pool.d/www.conf"
# FastCGI ping from inside the container (libfcgi's cgi-fcgi): the pool answers, not just listens.
PING = (
    "SCRIPT_NAME=/fpm-ping SCRIPT_FILENAME=/fpm-ping REQUEST_METHOD=GET "
    "cgi-fcgi -bind -connect 127.0.0.1:9000 | grep -q pong"
)


def containers(ctx: Context, name: str, svc: PhpFpmService) -> list[ContainerPlan]:
    pool = {
        "pm": svc.pm,
        "max_children": svc.max_children,
        "start_servers": svc.start_servers,
        "min_spare_servers": svc.min_spare_servers,
        "max_spare_servers": svc.max_spare_servers,
        "max_requests": svc.max_requests,
        "listen_backlog": svc.listen_backlog,
    }
    out = []
    for inst in ctx.instances(name):
        files, env = php_files(ctx, name, svc, inst, f"0.0.0.0:{PORT}", pool)
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind="php-fpm",
            image=svc.image or IMAGE,
            builtin_image=svc.image is None,
            ip=ctx.ips[inst],
            env=env,
            files=files,
            command=["php-fpm"],
            dirs=app_dirs(ctx, svc.app),
            wait=Wait("exec", PING, 60),
        )
        out.append(apply_overrides(plan, svc, ctx, CONFIG_PATH))
    return out


DESCRIPTOR = Descriptor(image=IMAGE, ports={"fastcgi": PORT})
