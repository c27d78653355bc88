"""`harness.Run`, the Python entry point: the run a topology file asks for. A `runtime: hosts`
file names machines that are up already, so it gets a HostsRun (loaded and judged over SSH, as
`harness run` does), never a docker copy of its topology built from the same services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.run import core
from harness.run.hosts import HostsRun, runtime_of


class Run(core.Run):
    """`Run(file, ...)`: a HostsRun for a `runtime: hosts` file (which takes HostsRun's
    `i_know=` and `ssh_config=` too), else the docker run."""

    def __new__(cls, topology_file: str | Path, *args: Any, **kw: Any) -> Any:
        if cls is Run and runtime_of(topology_file) == "hosts":
            return HostsRun(topology_file, *args, **kw)  # not a Run: __init__ is not called again
        return super().__new__(cls)
