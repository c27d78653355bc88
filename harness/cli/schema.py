"""`harness schema`: print the JSON Schema of topology files (shipped with the package)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    sc = sub.add_parser("schema", help="print the JSON Schema of topology files")
    sc.set_defaults(func=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from harness.spec.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0
