"""What every source definition has, whatever its type: the shared models (destination, staging, schema contract,
schedule, owners) and the shared rules (patterns, platform secret names). Each source type's own model is in
dlt_platform/source_types/<type>/definition.py; config.py parses documents of them and writes the JSON Schema.

Every rule lives in the generated JSON Schema so the Worker refuses what Python refuses (config/
definition_cases.json is checked by both). Python additionally asks croniter, which the shared cases pin down to
what `cron.cron_problem` (and the Worker's copy of it) already refuse.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Annotated, Literal

from croniter import croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict
from pydantic_core import InitErrorDetails, PydanticCustomError

from dlt_platform.contract import (
    BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY,
    DEFAULT_LOAD_JOB_BUDGET,
    LOAD_JOB_WARNING_SHARE,
    PLATFORM_SECRET_INFIX,
    PLATFORM_SECRET_PREFIXES,
)
from dlt_platform.cron import CRON_DESCRIPTION, CRON_PATTERN, CRON_SYNTAX_MESSAGE, cron_problem, runs_per_day

SOURCE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
# An object key prefix that stays under the snapshot root: relative, '/'-separated segments of a safe charset,
# no empty segment and no segment starting with a dot (so no '.' or '..').
R2_PREFIX_PATTERN = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*(/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*)*$"
R2_PREFIX_MESSAGE = (
    "must be a relative path: segments of letters, digits, '_', '-', '.' joined by '/', none empty "
    "or starting with '.', no leading '/'"
)
MAX_DESCRIPTION_CHARS = 2000
MAX_OWNERS, MAX_OWNER_CHARS = 20, 200
MAX_TAGS, MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS = 50, 128, 256


class StrictModel(BaseModel):
    # strict: no coercion the JSON Schema would not allow ("yes" for a bool, "3" for an int).
    model_config = ConfigDict(extra="forbid", strict=True)


def whole_number(value: object) -> object:
    # JSON cannot tell 3.0 from 3 in JavaScript, so the schema's "integer" accepts both: Python does too.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def iso_date(value: object) -> object:
    # What the schema's "format": "date" accepts; pydantic alone would also take timestamps and datetimes.
    if isinstance(value, dt.date) or (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        return value
    raise ValueError("must be a date YYYY-MM-DD")


class TimePartitioning(StrictModel):
    """BigQuery time partitioning of the table: one partition per day (hour, month, year) of a TIMESTAMP column."""

    column: Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="A TIMESTAMP column, e.g. cf_kv_fetched_at.")]
    granularity: Literal["hour", "day", "month", "year"] = Field("day", description="Width of one partition.")


WriteDisposition = Literal["replace", "merge", "append"]


class WarehouseDestination(StrictModel):
    """Where a source's tables land; a source whose tables are named by its extract (rest_api) has no `table`."""

    type: Literal["bigquery", "duckdb"] = Field(
        "bigquery", description="Warehouse; DLT_PLATFORM_DESTINATION overrides it for local work."
    )
    dataset: Annotated[
        str, Field(pattern=IDENTIFIER_PATTERN, description="Warehouse dataset (BigQuery dataset, DuckDB schema).")
    ]
    write_disposition: WriteDisposition = Field(
        "replace", description="replace: snapshot; merge: upsert on cf_kv_key; append: keep every load."
    )
    # BigQuery table options (DuckDB ignores them). Applied when the table is created.
    location: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9\-]{1,63}$")] | None = Field(
        None, description="BigQuery location of the dataset, e.g. 'EU', 'US', 'europe-west3' (default US)."
    )
    partition_by: TimePartitioning | None = Field(None, description="BigQuery time partitioning of the table.")
    cluster_by: (
        Annotated[
            list[Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]],
            Field(min_length=1, max_length=4, json_schema_extra={"uniqueItems": True}),
        ]
        | None
    ) = Field(None, description="BigQuery clustering columns, in order (at most 4), e.g. ['cf_kv_key'].")
    load_job_budget: Annotated[int, Field(ge=1, le=BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY)] | None = Field(
        None,
        description="Load jobs per table per UTC day this source's tables may use in BigQuery (the quota is "
        f"{BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY}, failed jobs included; default {DEFAULT_LOAD_JOB_BUDGET}). Webhook "
        "runs are spaced to stay under it, a schedule firing more often is refused, and a run taking a table past "
        f"{LOAD_JOB_WARNING_SHARE:.0%} of it raises an alert.",
    )

    @property
    def daily_load_job_budget(self) -> int:
        """Load jobs per table per UTC day (the definition's, else the platform default)."""
        return self.load_job_budget or DEFAULT_LOAD_JOB_BUDGET

    @field_validator("cluster_by")
    @classmethod
    def _distinct_cluster_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("cluster columns must be distinct")
        return value


class Destination(WarehouseDestination):
    table: Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="Table the records land in.")]


_PREFIX_WHEN_SNAPSHOTTING: JsonDict = {
    "if": {"required": ["raw_snapshot"], "properties": {"raw_snapshot": {"const": True}}},
    "then": {
        "required": ["r2_prefix"],
        "x-message": "r2_prefix is required when raw_snapshot is true",
        "properties": {"r2_prefix": {"type": "string", "x-message": "r2_prefix is required when raw_snapshot is true"}},
    },
}


class Staging(StrictModel):
    model_config = ConfigDict(json_schema_extra=_PREFIX_WHEN_SNAPSHOTTING)

    raw_snapshot: bool = Field(
        False, description="Keep compressed NDJSON of every extraction in R2 (or the local folder)."
    )
    r2_prefix: (
        Annotated[
            str, Field(max_length=512, pattern=R2_PREFIX_PATTERN, json_schema_extra={"x-message": R2_PREFIX_MESSAGE})
        ]
        | None
    ) = Field(
        None,
        validate_default=True,
        description="Object key prefix of the snapshots, relative ('a/b', no '..' or leading '/'); required when "
        "raw_snapshot is true.",
    )

    @field_validator("r2_prefix", mode="before")
    @classmethod
    def _safe_prefix(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.data.get("raw_snapshot"):
            raise ValueError("r2_prefix is required when raw_snapshot is true")
        if isinstance(value, str) and not re.fullmatch(R2_PREFIX_PATTERN, value):
            raise ValueError(R2_PREFIX_MESSAGE)
        return value


SchemaEvolutionMode = Literal["evolve", "freeze", "discard_row", "discard_value"]
SCHEMA_CONTRACT_DESCRIPTION = (
    "dlt's schema contract (https://dlthub.com/docs/general-usage/schema-contracts): one mode for tables, columns "
    "and data types, or each on its own. `freeze` fails a load that would add what it names (a new table, a new "
    "column of an existing table, a new data type of an existing column) and loads nothing; `discard_row` drops "
    "such rows, `discard_value` such values, and the run counts the rows it dropped. A table's first load always "
    "adds its columns; `tables: freeze` refuses new tables, the first load's included. Default: evolve."
)


class SchemaContract(StrictModel):
    """dlt's schema contract, entity by entity (TSchemaContractDict); an entity left out evolves."""

    tables: SchemaEvolutionMode = "evolve"
    columns: SchemaEvolutionMode = "evolve"
    data_type: SchemaEvolutionMode = "evolve"


# Cloudflare Containers' predefined instance types (developers.cloudflare.com/containers/platform/limits/): vCPU,
# memory and disk of a run container. wrangler.toml fixes the type per container class, so the Worker keeps one
# runner class per type (worker/src/run_containers.ts RUNNER_BINDINGS).
InstanceType = Literal["lite", "basic", "standard-1", "standard-2", "standard-3", "standard-4"]
DEFAULT_INSTANCE_TYPE: InstanceType = "standard-1"


class Runner(StrictModel):
    """The run container each run of the source gets (docs/dagster.md, "Run containers")."""

    instance_type: InstanceType = Field(
        DEFAULT_INSTANCE_TYPE,
        description="Cloudflare Containers instance type of the source's runs: lite (1/16 vCPU, 256 MiB), basic "
        "(1/4 vCPU, 1 GiB), standard-1 (1/2 vCPU, 4 GiB), standard-2 (1 vCPU, 6 GiB), standard-3 (2 vCPU, 8 GiB), "
        "standard-4 (4 vCPU, 12 GiB). Default standard-1.",
    )


class SourceBase(StrictModel):
    """What every source has, whatever its type: an id, where its rows go, when it runs, who owns it."""

    if TYPE_CHECKING:
        # Each type's model declares it as a Literal field (after the fields below, which keeps the generated
        # schema's order); declared here for the type checker only, for code that serves every type.
        source_type: str
    source_id: Annotated[str, Field(pattern=SOURCE_ID_PATTERN, description="Stable id; also the dlt pipeline name.")]
    enabled: bool = True
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)] | None = None
    schedule: (
        Annotated[
            str,
            Field(
                pattern=CRON_PATTERN, description=CRON_DESCRIPTION, json_schema_extra={"x-message": CRON_SYNTAX_MESSAGE}
            ),
        ]
        | None
    ) = None
    freshness_hours: Annotated[float, Field(gt=0, le=24 * 366)] | None = Field(
        None, description="Data older than this is stale; default derived from the schedule."
    )
    owners: list[Annotated[str, Field(min_length=1, max_length=MAX_OWNER_CHARS)]] = Field(
        default_factory=list, max_length=MAX_OWNERS
    )
    tags: dict[
        Annotated[str, Field(min_length=1, max_length=MAX_TAG_KEY_CHARS)],
        Annotated[str, Field(max_length=MAX_TAG_VALUE_CHARS)],
    ] = Field(default_factory=dict, max_length=MAX_TAGS)
    # A type whose tables are named by its extract (rest_api, d1, r2_files) keeps this; a one-table type narrows it
    # to `Destination`, which adds `table` (OneTableSource).
    destination: WarehouseDestination
    staging: Staging = Field(default_factory=Staging)
    schema_contract: SchemaEvolutionMode | SchemaContract | None = Field(None, description=SCHEMA_CONTRACT_DESCRIPTION)
    runner: Runner | None = Field(
        None, description="Size of the source's run containers (default: instance_type standard-1)."
    )

    @property
    def instance_type(self) -> InstanceType:
        """The instance type of this source's run containers."""
        return self.runner.instance_type if self.runner else DEFAULT_INSTANCE_TYPE

    @property
    def dlt_schema_contract(self) -> str | dict | None:
        """The contract as dlt takes it (None: dlt's default, evolve everything)."""
        contract = self.schema_contract
        return contract.model_dump() if isinstance(contract, SchemaContract) else contract

    @field_validator("schedule", mode="before")
    @classmethod
    def _valid_cron(cls, value: object) -> object:
        if isinstance(value, str):
            problem = cron_problem(value)
            if problem is None and not croniter.is_valid(value):
                problem = "croniter does not accept it"
            if problem:
                raise ValueError(f"'{value}' is not a valid five-field cron expression: {problem}")
        return value

    @model_validator(mode="after")
    def _schedule_within_load_job_budget(self) -> SourceBase:
        # BigQuery counts load jobs per table per day: a schedule that alone fires more often than the budget
        # would spend it every day (each run makes at least one load job per table). Named on `schedule`.
        if self.schedule is None or self.destination.type != "bigquery":
            return self
        problem = schedule_budget_problem(self.source_id, self.schedule, self.destination.daily_load_job_budget)
        if problem is None:
            return self
        error = InitErrorDetails(
            type=PydanticCustomError("load_job_budget", problem), loc=("schedule",), input=self.schedule
        )
        raise ValidationError.from_exception_data(type(self).__name__, [error])


def schedule_budget_problem(source_id: str, schedule: str, budget: int) -> str | None:
    """Why a schedule alone would spend more than its source's daily load-job budget, or None. The Worker's
    `scheduleBudgetProblem` (worker/src/validation.ts) says the same."""
    runs = runs_per_day(schedule)
    if runs <= budget:
        return None
    return (
        f"source {source_id} would run {runs} times a day ('{schedule}'), over its budget of {budget} load jobs "
        "per table per day (destination.load_job_budget, at most BigQuery's quota of "
        f"{BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY})"
    )


class OneTableSource(SourceBase):
    """A source of a type that loads one table, `destination.table` (cloudflare_kv, webhook); the Dagster asset
    and translator of such a table serve them all (orchestration/assets.py)."""

    destination: Destination


# Names shared by the source types that take secrets (webhook signing keys, rest_api credentials).
HEADER_NAME_PATTERN = r"^[A-Za-z0-9\-]{1,64}$"
# Worker secrets are environment bindings: upper-case names.
SECRET_NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"
SECRET_MESSAGE = 'must be {"env": "NAME"}: secrets are read from the environment, never written in a definition'
# The platform's own secrets and settings share the container with the sources' secrets: the Worker's tokens and
# session key, R2, BigQuery and Cloudflare credentials, Dagster's database, dlt's SECTION__KEY configuration. A
# definition never names one (whatever DLT_SOURCE_SECRETS lists), so no source can send them to an API. The list is
# in dlt_platform/contract.py (the Worker's intake reads it too).
PLATFORM_SECRET_MESSAGE = (
    "names a platform secret (DLT_*, DAGSTER_*, CLOUDFLARE_*, GOOGLE_*, BIGQUERY_*, AWS_*, "
    "ADMIN_*, ALERT_*, names with __): a source may use only the secrets DLT_SOURCE_SECRETS "
    "lists for sources"
)
# The same rule for the Worker's validator, as a pattern the schema can carry.
NOT_PLATFORM_SECRET_PATTERN = f"^(?!(?:{'|'.join(PLATFORM_SECRET_PREFIXES)})|.*{PLATFORM_SECRET_INFIX})"


def is_platform_secret(name: str) -> bool:
    return name.startswith(PLATFORM_SECRET_PREFIXES) or PLATFORM_SECRET_INFIX in name


def tagged_union_check(kind: str, tags: tuple[str, ...]):
    """A clear message for an unknown `type` of a tagged union (pydantic's own lists tags in quotes)."""
    message = f"unknown {kind} type: must be one of {', '.join(tags)}"
    TAGGED_UNION_MESSAGES[frozenset(tags)] = message

    def check(value: object) -> object:
        if isinstance(value, dict) and value.get("type") not in tags:
            raise ValueError(f"{message} (got {json.dumps(value.get('type'))})")
        return value

    return BeforeValidator(check)


TAGGED_UNION_MESSAGES: dict[frozenset, str] = {}
