"""values.schema.json, checked in pure Python (jsonschema): no Helm needed for these."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from ._support import CHART_DIR, SCENARIOS, ci_values, merge_values


def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _defaults() -> dict[str, Any]:
    loaded = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _errors(values: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator().iter_errors(values)
    ]


def test_defaults_match_the_schema() -> None:
    """values.yaml on its own satisfies the schema."""
    assert _errors(_defaults()) == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_ci_values_match_the_schema(scenario: str) -> None:
    """Each ci/*-values.yaml, merged over the defaults as Helm does, satisfies the schema."""
    assert _errors(merge_values(_defaults(), ci_values(scenario))) == []


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"replicas": 3}, ""),
        ({"config": {"logLevel": "loud"}}, "config/logLevel"),
        ({"config": {"publicUrl": "sidecar.example.com"}}, "config/publicUrl"),
        ({"config": {"shutdownTimout": 10}}, "config"),
        ({"redis": {"url": "http://redis:6379"}}, "redis/url"),
        ({"redis": {"sentinel": {"hosts": ["sentinel-0"]}}}, "redis/sentinel/hosts/0"),
        ({"auth": {"keyNames": {"clientId": "bad key"}}}, "auth/keyNames/clientId"),
        ({"image": {"digest": "latest"}}, "image/digest"),
        ({"auth": {"secretKeys": "too-short-for-the-sidecar"}}, "auth/secretKeys"),
        ({"autoscaling": {"targetCPUUtilizationPercentage": 150}}, "autoscaling"),
    ],
)
def test_schema_rejects_mistakes(override: dict[str, Any], where: str) -> None:
    """Typos, bad enums, malformed URLs and out-of-range numbers are caught before rendering."""
    errors = _errors(merge_values(_defaults(), override))
    assert errors
    assert any(e.startswith(where) for e in errors), errors


def test_every_default_key_is_declared() -> None:
    """Every object in the schema forbids unknown keys, so values.yaml and schema stay in step."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))

    def walk(node: dict[str, Any], path: str) -> list[str]:
        missing = []
        if "properties" in node and node.get("additionalProperties") is not False:
            missing.append(path or "<root>")
        for key, child in node.get("properties", {}).items():
            missing += walk(child, f"{path}/{key}")
        return missing

    assert walk(schema, "") == []
