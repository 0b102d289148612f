"""The source definition: one job shape everywhere (config/sources.json locally, D1 `sources` in production).

Modelled once here; `config/source.schema.json` is generated from these models (`dlt-platform schema`) and the
Worker validates with that same file, so the two cannot drift without a test failing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SOURCE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
# Five-field cron; the Worker only has the schema, so the pattern is a first filter and croniter the real check.
CRON_PATTERN = r"^\s*\S+\s+\S+\s+\S+\s+\S+\s+\S+\s*$"
DATE_PLACEHOLDER = re.compile(r"\{date:([^{}]+)\}")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TimePartitioning(StrictModel):
    """BigQuery time partitioning of the table: one partition per day (hour, month, year) of a TIMESTAMP column."""

    column: Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="A TIMESTAMP column, e.g. cf_kv_fetched_at.")]
    granularity: Literal["hour", "day", "month", "year"] = Field("day", description="Width of one partition.")


class Destination(StrictModel):
    type: Literal["bigquery", "duckdb"] = Field("bigquery", description="Warehouse; DLT_PLATFORM_DESTINATION overrides it for local work.")
    dataset: Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="Warehouse dataset (BigQuery dataset, DuckDB schema).")]
    table: Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="Table the records land in.")]
    write_disposition: Literal["replace", "merge", "append"] = Field(
        "replace", description="replace: snapshot; merge: upsert on cf_kv_key; append: keep every load."
    )
    # BigQuery table options (DuckDB ignores them). Applied when the table is created.
    location: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9\-]{1,63}$")] | None = Field(
        None, description="BigQuery location of the dataset, e.g. 'EU', 'US', 'europe-west3' (default US)."
    )
    partition_by: TimePartitioning | None = Field(None, description="BigQuery time partitioning of the table.")
    cluster_by: Annotated[list[Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]], Field(min_length=1, max_length=4, json_schema_extra={"uniqueItems": True})] | None = Field(
        None, description="BigQuery clustering columns, in order (at most 4), e.g. ['cf_kv_key']."
    )

    @field_validator("cluster_by")
    @classmethod
    def _distinct_cluster_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("cluster columns must be distinct")
        return value


class Incremental(StrictModel):
    """Key-prefix windows: keys are date-prefixed, so a window is a prefix and a run lists only recent windows."""

    enabled: bool = True
    key_prefix: Annotated[
        str,
        Field(
            min_length=1,
            description="Key prefix template with one {date:FORMAT} placeholder (strftime), e.g. 'lead:{date:%Y%m%d}'.",
        ),
    ]
    step: Literal["day", "hour"] = Field("day", description="Width of one window (and of one Dagster partition).")
    lookback: Annotated[int, Field(ge=1, le=744, description="How many windows back from now a normal run loads.")] = 3
    start: dt.date = Field(..., description="First window that exists (first Dagster partition).")

    @field_validator("key_prefix")
    @classmethod
    def _one_date_placeholder(cls, value: str) -> str:
        if len(DATE_PLACEHOLDER.findall(value)) != 1:
            raise ValueError("must contain exactly one {date:FORMAT} placeholder, e.g. 'lead:{date:%Y%m%d}'")
        return value


class KVExtract(StrictModel):
    namespace_id: Annotated[str, Field(min_length=1, description="Cloudflare KV namespace id (REST transport).")]
    namespace_title: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9_\-]{1,128}$", description="Namespace title; the Worker's KV binding name.")
    ]
    prefix: str | None = Field(None, description="Only keys starting with this prefix.")
    transport: Literal["rest", "worker"] = Field(
        "rest", description="rest: Cloudflare API with an API token; worker: the orchestrator's /internal/kv pages."
    )
    incremental: Incremental | None = None
    keys: list[Annotated[str, Field(min_length=1, max_length=512)]] | None = Field(
        None, description="Explicit keys to load instead of a listing (full backfills in batches)."
    )

    @model_validator(mode="after")
    def _keys_or_windows(self) -> KVExtract:
        if self.keys is not None and self.incremental is not None and self.incremental.enabled:
            raise ValueError("keys and incremental cannot both be set: explicit keys replace the listing")
        return self


class Staging(StrictModel):
    raw_snapshot: bool = Field(False, description="Keep compressed NDJSON of every extraction in R2 (or the local folder).")
    r2_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-./]{1,512}$")] | None = Field(
        None, description="Object key prefix of the snapshots; required when raw_snapshot is true."
    )

    @model_validator(mode="after")
    def _prefix_when_snapshotting(self) -> Staging:
        if self.raw_snapshot and not self.r2_prefix:
            raise ValueError("r2_prefix is required when raw_snapshot is true")
        return self


class SourceDefinition(StrictModel):
    """One configured source: where the data is, where it goes, when it runs."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"$id": "https://dlt-platform/config/source.schema.json", "title": "SourceDefinition"},
    )

    source_id: Annotated[str, Field(pattern=SOURCE_ID_PATTERN, description="Stable id; also the dlt pipeline name.")]
    # Only cloudflare_kv exists today; rest_api and webhook join as further members of this literal, each with
    # its own extract model.
    source_type: Literal["cloudflare_kv"]
    enabled: bool = True
    description: str | None = None
    schedule: Annotated[str, Field(pattern=CRON_PATTERN, description="Cron (UTC).")] | None = None
    freshness_hours: Annotated[float, Field(gt=0, le=24 * 366)] | None = Field(
        None, description="Data older than this is stale; default derived from the schedule."
    )
    owners: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    destination: Destination
    extract: KVExtract
    staging: Staging = Field(default_factory=Staging)

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"'{value}' is not a valid five-field cron expression")
        return value


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
    try:
        return SourceDefinition.model_validate(data)
    except ValidationError as error:
        raise DefinitionError(describe_validation_error(error, where)) from None


def parse_sources_document(document: object) -> list[SourceDefinition]:
    """A sources document is {"sources": [definition, ...]}; source ids are unique."""
    if not isinstance(document, dict) or not isinstance(document.get("sources"), list):
        raise DefinitionError('sources: expected a JSON object {"sources": [...]}')
    definitions: list[SourceDefinition] = []
    problems: list[str] = []
    for index, item in enumerate(document["sources"]):
        try:
            definitions.append(parse_definition(item, f"sources[{index}]."))
        except DefinitionError as error:
            problems.append(str(error))
    seen: set[str] = set()
    for index, definition in enumerate(definitions):
        if definition.source_id in seen:
            problems.append(f"sources[{index}].source_id: duplicate '{definition.source_id}'")
        seen.add(definition.source_id)
    if problems:
        raise DefinitionError("; ".join(problems))
    return definitions


def load_sources_file(path: Path) -> list[SourceDefinition]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DefinitionError(f"sources file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise DefinitionError(f"{path}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    try:
        return parse_sources_document(document)
    except DefinitionError as error:
        raise DefinitionError(f"{path}: {error}") from None


def json_schema() -> dict:
    return SourceDefinition.model_json_schema()


def render_json_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
