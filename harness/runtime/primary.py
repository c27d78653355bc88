"""Who is primary, asked of each data container itself (for `harness status`): a MariaDB answers
`@@read_only` (0: it takes writes, the primary; 1: a replica), a Redis its `ROLE` (master or
replica). Whatever else runs in a container answers nothing. The VIP column says who holds a
data service's VIP; this says who actually takes writes, which also covers a replicated
database without a VIP, and shows a split brain (two primaries) when there is one."""

from __future__ import annotations

from docker.models.containers import Container

from harness.runtime import labels
from harness.runtime.docker import client

# One probe for every container: which server runs decides what to ask (no kind is named).
PROBE = r"""
if pgrep -x mysqld >/dev/null 2>&1; then
  r=$(mysql -N -B -e 'SELECT @@global.read_only' 2>/dev/null) || exit 0
  [ "$r" = 0 ] && echo primary || echo replica
elif pgrep -x redis-server >/dev/null 2>&1; then
  r=$(redis-cli --no-auth-warning -a "${REDIS_PASSWORD:-}" role 2>/dev/null | head -n1) || exit 0
  case "$r" in master) echo primary ;; slave|replica) echo replica ;; esac
fi
"""


def role(c: Container) -> str:
    """'primary', 'replica', or '' (not a data server, not running, or no answer)."""
    if c.status != "running":
        return ""
    try:
        code, out = c.exec_run(["sh", "-c", PROBE])
    except Exception:  # noqa: BLE001 - a container going away has no role
        return ""
    text = out.decode(errors="replace").strip() if code == 0 else ""
    return text if text in ("primary", "replica") else ""


def roles(run_id: str | None = None) -> dict[tuple[str, str], str]:
    """(run id, instance) -> role, for every running container of the run(s)."""
    out = {}
    for c in client().containers.list(filters=labels.run_filter(run_id)):
        r = role(c)
        if r:
            out[(c.labels.get(labels.RUN, "?"), c.labels.get(labels.INSTANCE, c.name))] = r
    return out
