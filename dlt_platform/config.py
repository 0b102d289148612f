"""Source definitions as documents: one job shape everywhere (config/sources.json locally, D1 `sources` in
production), parsed with the model of each definition's `source_type` (the source-type registry).

`config/source.schema.json` is generated from the same models (`dlt-platform schema`) and the Worker validates
with that file, so the two cannot drift without a test failing (config/definition_cases.json is run by both).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from dlt_platform.definition_base import TAGGED_UNION_MESSAGES, SourceBase
from dlt_platform.source_types import SOURCE_TYPES as REGISTERED_TYPES

# One model per source_type; `source_type` picks the model (here and, through the generated schema, in the Worker).
DEFINITION_MODELS: dict[str, type[SourceBase]] = {
    name: source_type.model for name, source_type in REGISTERED_TYPES.items()
}
SOURCE_TYPES = tuple(DEFINITION_MODELS)
# A parsed definition of any registered type (each type's model adds its `source_type` and `extract`).
SourceDefinition = SourceBase


class DefinitionError(ValueError):
    """A sources file or definition that cannot be used; the message names every bad field."""


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"] if part not in ("function-after",))
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{prefix}{field}: {message}" if field or prefix else message)
    return "; ".join(problems)


def parse_definition(data: object, where: str = "") -> SourceDefinition:
    if not isinstance(data, dict):
        raise DefinitionError(f"{where.rstrip('.') or 'definition'}: expected a JSON object")
    source_type = data.get("source_type")
    model = DEFINITION_MODELS.get(source_type) if isinstance(source_type, str) else None
    if model is None:
        said = "is required" if source_type is None else f"'{source_type}' is not one of {', '.join(SOURCE_TYPES)}"
        raise DefinitionError(f"{where}source_type: {said}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise DefinitionError(describe_validation_error(error, where)) from None


@dataclass(frozen=True)
class DefinitionProblem:
    """One entry of a sources document that cannot be used; the others still can."""

    index: int
    source_id: str | None  # when the entry names one, even if it is itself invalid
    message: str


def sort_sources_document(document: object) -> tuple[list[SourceDefinition], list[DefinitionProblem]]:
    """The usable definitions of {"sources": [definition, ...]} and what is wrong with the others (a later
    duplicate of a source id is a problem, the first one stays)."""
    if not isinstance(document, dict) or not isinstance(document.get("sources"), list):
        raise DefinitionError('sources: expected a JSON object {"sources": [...]}')
    definitions: list[SourceDefinition] = []
    problems: list[DefinitionProblem] = []
    seen: set[str] = set()
    for index, item in enumerate(document["sources"]):
        named = item.get("source_id") if isinstance(item, dict) else None
        named = named if isinstance(named, str) else None
        try:
            definition = parse_definition(item, f"sources[{index}].")
        except DefinitionError as error:
            problems.append(DefinitionProblem(index, named, str(error)))
            continue
        if definition.source_id in seen:
            problems.append(DefinitionProblem(index, named, f"sources[{index}].source_id: duplicate '{named}'"))
            continue
        seen.add(definition.source_id)
        definitions.append(definition)
    return definitions, problems


def parse_sources_document(document: object) -> list[SourceDefinition]:
    """A sources document is {"sources": [definition, ...]}; source ids are unique."""
    definitions, problems = sort_sources_document(document)
    if problems:
        raise DefinitionError("; ".join(problem.message for problem in problems))
    return definitions


def read_sources_document(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DefinitionError(f"sources file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise DefinitionError(
            f"{path}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None


def load_sources_file(path: Path) -> list[SourceDefinition]:
    document = read_sources_document(path)
    try:
        return parse_sources_document(document)
    except DefinitionError as error:
        raise DefinitionError(f"{path}: {error}") from None


def json_schema() -> dict:
    """One schema for every source type: `source_type` picks the type's definition through if/then, so a bad
    definition is reported against its own type's fields only."""
    defs: dict = {}
    branches = []
    for source_type, model in DEFINITION_MODELS.items():
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        branches.append(
            {
                "if": {"required": ["source_type"], "properties": {"source_type": {"const": source_type}}},
                "then": {"$ref": f"#/$defs/{model.__name__}"},
            }
        )
    document = {
        "$id": "https://dlt-platform/config/source.schema.json",
        "title": "SourceDefinition",
        "type": "object",
        "required": ["source_type"],
        "properties": {
            "source_type": {"enum": list(SOURCE_TYPES), "x-message": f"must be one of {', '.join(SOURCE_TYPES)}"}
        },
        "allOf": branches,
        "$defs": defs,
    }
    return {key: _for_the_worker(value) for key, value in document.items()}


def _for_the_worker(node: object) -> object:
    """Rewrites two shapes pydantic generates into keywords the Worker's validator enforces.

    A dict with patterned keys is `patternProperties`, which leaves other keys unchecked: it becomes
    `propertyNames` + `additionalProperties`. pydantic writes a union tagged by `type` as oneOf + discriminator;
    the Worker's validator knows neither, and oneOf reports every branch's failures. As if/then per tag (as for
    source_type) an unknown tag is one message and a known one is checked against its own model only."""
    if isinstance(node, list):
        return [_for_the_worker(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "discriminator" in node:
        mapping = node["discriminator"]["mapping"]
        tag = node["discriminator"]["propertyName"]
        return {
            "type": "object",
            "required": [tag],
            "properties": {
                tag: {
                    "type": "string",
                    "pattern": f"^({'|'.join(mapping)})$",
                    "x-message": TAGGED_UNION_MESSAGES[frozenset(mapping)],
                }
            },
            "allOf": [
                {"if": {"required": [tag], "properties": {tag: {"const": value}}}, "then": {"$ref": ref}}
                for value, ref in mapping.items()
            ],
        }
    if "patternProperties" in node and len(node["patternProperties"]) == 1:
        node = dict(node)
        [(pattern, values)] = node.pop("patternProperties").items()
        node["propertyNames"] = {"pattern": pattern}
        node["additionalProperties"] = values
    return {key: _for_the_worker(value) for key, value in node.items()}


def render_json_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
