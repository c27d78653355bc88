"""`harness images build`: build the built-in images (bootstrapping the base image if needed)."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.output import out, say


def add_parser(sub: Any) -> None:
    i = sub.add_parser(
        "images", help="build the built-in images (bootstrapping the base image if needed)"
    )
    i.add_argument("action", choices=["build"])
    i.add_argument("names", nargs="*")
    i.set_defaults(func=cmd_images)


def cmd_images(args: argparse.Namespace) -> int:
    from harness.runtime import images

    for name, tag in images.build_all(args.names or images.available(), say).items():
        out.print(f"{name}: {tag}")
    return 0
