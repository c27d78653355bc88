"""Load goes only to the run's own containers or to loopback. A `load.url` elsewhere is refused
unless the user says why (`--allow-external-target "staging LB, owned by us"`): pointing a load
generator at someone else's address by a typo is the mistake this guards against."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from harness.errors import SpecError
from harness.plan.model import RunPlan


def check_load_url(plan: RunPlan, allow_reason: str | None, source: str) -> str | None:
    """Return a note for the journal when an external target was allowed; raise when refused."""
    host = urlsplit(plan.load_url).hostname or ""
    if host == "localhost" or host in {c.instance for c in plan.containers}:
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and (ip.is_loopback or ip in ipaddress.ip_network(plan.subnet)):
        return None
    if allow_reason:
        return f"load target {plan.load_url} is outside the run's network; allowed because: {allow_reason}"
    raise SpecError(
        [
            f"{source}:{_line(source)}: load.url: {plan.load_url} is neither loopback nor inside "
            f"the run's network {plan.subnet} "
            "(use a service name as load.target, or pass --allow-external-target 'why')"
        ]
    )


def _line(source: str) -> int:
    """The line of `load.url` in the topology file (validation refuses an outside URL first,
    at its line; this is the run's own last check, and says where too)."""
    from pathlib import Path

    from harness.spec.loader import line_for, read_yaml

    try:
        _, lines = read_yaml(Path(source))
    except SpecError:
        return 1
    return line_for(lines, ("load", "url"))
