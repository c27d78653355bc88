"""The one exception tree of the harness; the CLI is the only place that renders it.

    HarnessError                 exit 2   anything the harness could not do
    ├── SpecError                exit 3   invalid topology/experiment input (one line per problem)
    ├── InfrastructureError      exit 2   Docker, images, networks, containers, Prometheus
    │   └── WaitTimeout          exit 2   a service did not become healthy (carries its logs)
    ├── Inconclusive             exit 2   the run could not be judged (e.g. baseline not steady)
    └── Interrupted              exit 2   SIGINT/SIGTERM; everything was still rolled back

An assertion that fails is not an exception: it is a verdict (exit 1).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INCONCLUSIVE = 2
EXIT_INVALID = 3


class HarnessError(Exception):
    exit_code = EXIT_INCONCLUSIVE

    def render(self) -> str:
        return str(self)


class SpecError(HarnessError):
    """Invalid input. `problems` are complete one-line messages: `file:line: field: problem (fix)`."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class InfrastructureError(HarnessError):
    exit_code = EXIT_INCONCLUSIVE


class WaitTimeout(InfrastructureError):
    def __init__(self, what: str, seconds: float, logs: str = "") -> None:
        self.what, self.seconds, self.logs = what, seconds, logs
        msg = f"{what} was not ready after {seconds:.0f}s"
        if logs:
            tail = "\n".join(logs.strip().splitlines()[-15:])
            msg += f"; last log lines:\n{tail}"
        super().__init__(msg)


class Inconclusive(HarnessError):
    exit_code = EXIT_INCONCLUSIVE


class Interrupted(HarnessError):
    """Raised from the SIGINT/SIGTERM handler so that every `finally` (rollback, teardown) runs."""

    exit_code = EXIT_INCONCLUSIVE
