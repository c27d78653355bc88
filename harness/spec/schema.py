"""The JSON Schema of topology files, for editors (`# yaml-language-server: $schema=...`) and CI.

Generated from the pydantic models, then adjusted where the models accept more than their types
say: a fault's shorthand (`{kill: web-1}`) and the rule that service names are the only keys of
`services`. The schema is a convenience; `harness validate` (the loader) stays the authority, and
cross-reference checks (dangling names, cycles, VIPs) are beyond any schema.
"""

from __future__ import annotations

from typing import Any

from harness.spec.models import Topology

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:harness:schema:topology:1"

_SHORTHAND = {
    "type": "string",
    "description": "shorthand: the fault's target (or service for vip_failover, link for toxics)",
}


def _close_pattern_maps(node: Any) -> None:
    """pydantic renders `dict[Name, X]` as patternProperties only; keys not matching are errors."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_maps(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_maps(value)


def json_schema() -> dict[str, Any]:
    schema = Topology.model_json_schema(by_alias=True)
    for prop in schema["$defs"]["Fault"]["properties"].values():
        options = prop.get("anyOf", [])
        if any("$ref" in o for o in options) and _SHORTHAND not in options:
            options.insert(0, dict(_SHORTHAND))
    _close_pattern_maps(schema)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "harness topology",
        "description": "A topology file for `harness run` / `harness validate` (see topologies/ha.yaml).",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }
