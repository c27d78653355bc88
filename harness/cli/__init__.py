"""Command line: one small module per subcommand (each with `add_parser(sub)` and its
`cmd_<name>`), assembled here in `COMMANDS` order; this is the one place errors are rendered
(a traceback only with --debug). A new subcommand is a module here plus its entry in COMMANDS
(or, for a subcommand that lives with its feature, its `add_parser` called from `parser()`)."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from rich.text import Text

from harness.cli import (
    doctor,
    down,
    export,
    gc,
    grafana,
    images,
    report,
    run,
    schema,
    status,
    up,
    validate,
)
from harness.cli.output import err, line
from harness.errors import EXIT_INCONCLUSIVE, EXIT_INVALID, HarnessError, SpecError

__all__ = ["main", "parser"]

COMMANDS = (run, validate, up, down, status, gc, schema, grafana, doctor, images, report, export)


class _Parser(argparse.ArgumentParser):
    """A wrong command line is invalid input: exit 3, like a bad topology (argparse says 2,
    which here means "could not be judged")."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="harness", description="Load-test and chaos verification for PHP stacks.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="verb", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    from harness.load.worker import add_parser as add_worker

    add_worker(sub)
    from harness.remote.cli import add_parser as add_hosts

    add_hosts(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SpecError as exc:
        for problem in exc.problems:
            line(err, problem)
        return exc.exit_code
    except HarnessError as exc:
        if args.debug:
            raise
        line(err, Text("error: ", style="red"), str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INCONCLUSIVE
    except Exception as exc:  # never a bare traceback for users; --debug shows it
        if args.debug:
            raise
        line(
            err,
            Text("internal error: ", style="red"),
            f"{exc!r} (run again with --debug for the traceback)",
        )
        return EXIT_INCONCLUSIVE


if __name__ == "__main__":
    sys.exit(main())
