"""The Killa Tamata spec's component schemas as JSON Schema, for validating real responses."""

from __future__ import annotations

import copy
import json
from typing import Any

from backend.discovery.routes import SPECS_DIR

SPEC: dict[str, Any] = json.loads((SPECS_DIR / "killa-tamata-api-v0.7.0.openapi.json").read_text())


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` is `type: [T, "null"]` in JSON Schema."""
    if isinstance(node, dict):
        node = {key: _nullable_to_json_schema(value) for key, value in node.items()}
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    return node


def spec_schema(name: str) -> dict[str, Any]:
    components = _nullable_to_json_schema(copy.deepcopy(SPEC["components"]))
    return {"$ref": f"#/components/schemas/{name}", "components": components}
