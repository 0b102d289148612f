"""config/definition_cases.json through the Python model; worker/test/definition_cases.test.ts runs the same
cases through the Worker's validator, so a case one side accepts and the other refuses fails the build."""

from __future__ import annotations

import copy
import json

import pytest

from dlt_platform.config import DefinitionError, parse_definition
from dlt_platform.settings import PROJECT_ROOT
from dlt_platform.source_types import SOURCE_TYPES

CASES_FILE = PROJECT_ROOT / "config" / "definition_cases.json"
DOCUMENT = json.loads(CASES_FILE.read_text(encoding="utf-8"))


def expand(value):
    """{"$repeat": s, "times": n} -> s * n; {"$concat": [...]} -> the joined parts; anything else as is."""
    if isinstance(value, dict) and set(value) == {"$repeat", "times"}:
        return value["$repeat"] * value["times"]
    if isinstance(value, dict) and set(value) == {"$concat"}:
        return "".join(expand(part) for part in value["$concat"])
    if isinstance(value, dict):
        return {key: expand(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item) for item in value]
    return value


def build(case: dict) -> dict:
    definition = copy.deepcopy(DOCUMENT["base"])
    for path in case.get("delete", []):
        *parents, last = path.split(".")
        target = definition
        for part in parents:
            target = target[part]
        target.pop(last, None)
    for path, value in case.get("set", {}).items():
        *parents, last = path.split(".")
        target = definition
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = expand(value)
    return definition


def problems_of(message: str) -> list[tuple[str, str]]:
    return [tuple(problem.split(": ", 1)) for problem in message.split("; ")]


@pytest.mark.parametrize("case", DOCUMENT["cases"], ids=[case["name"] for case in DOCUMENT["cases"]])
def test_definition_case(case):
    definition = build(case)
    if case["valid"]:
        parse_definition(definition)
        return
    with pytest.raises(DefinitionError) as error:
        parse_definition(definition)
    named = [(field, text) for field, text in problems_of(str(error.value))
             if field == case["field"] or field.startswith(case["field"] + ".")]
    assert named, str(error.value)
    assert case.get("says", "") in " ".join(text for _, text in named), str(error.value)


def test_the_cases_cover_both_outcomes_and_name_unique_cases():
    names = [case["name"] for case in DOCUMENT["cases"]]
    assert len(names) == len(set(names))
    assert sum(case["valid"] for case in DOCUMENT["cases"]) >= 30
    assert sum(not case["valid"] for case in DOCUMENT["cases"]) >= 100


JSON_SCHEMA_KEYWORDS = {
    "$id", "$defs", "$ref", "$comment", "title", "description", "default", "type", "enum", "const", "properties",
    "additionalProperties", "required", "items", "anyOf", "allOf", "not", "if", "then", "else", "pattern",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "maxItems", "minItems", "maxProperties",
    "minProperties",
    "propertyNames", "format", "uniqueItems", "x-message",
}


def test_the_generated_schema_uses_only_keywords_the_worker_enforces():
    """A constraint pydantic cannot translate lands in the schema under its own name ('ge'), which validators
    ignore: the Worker would then accept what Python refuses."""
    schema = json.loads((PROJECT_ROOT / "config" / "source.schema.json").read_text(encoding="utf-8"))
    unknown: set[str] = set()

    def walk(node, inside_map: bool = False) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not inside_map:
                    unknown.update({key} - JSON_SCHEMA_KEYWORDS)
                walk(value, inside_map=key in ("properties", "$defs") and not inside_map)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    assert unknown == set()


@pytest.mark.parametrize("source_type", sorted(SOURCE_TYPES))
def test_every_registered_source_type_has_valid_and_invalid_cases(source_type):
    # The registry decides which types exist; both validators must have been shown each one's rules.
    judged = {case["valid"] for case in DOCUMENT["cases"] if build(case).get("source_type") == source_type}
    assert judged == {True, False}, f"config/definition_cases.json has no {'valid' if True not in judged else 'invalid'} " \
                                    f"case of source_type {source_type}"
