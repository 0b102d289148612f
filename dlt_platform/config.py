"""The source definition: one job shape everywhere (config/sources.json locally, D1 `sources` in production).

Modelled once here; `config/source.schema.json` is generated from these models (`dlt-platform schema`) and the
Worker validates with that same file, so the two cannot drift without a test failing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from croniter import croniter
from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
    model_validator,
)

from dlt_platform.contract import PLATFORM_SECRET_INFIX, PLATFORM_SECRET_PREFIXES
from dlt_platform.cron import CRON_DESCRIPTION, CRON_PATTERN, CRON_SYNTAX_MESSAGE, cron_problem

SOURCE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
# Ids and names that end up in URL paths (KV REST API, /internal/kv/<title>/page): no separators, no dots.
NAME_PATTERN = r"^[A-Za-z0-9_\-]{1,128}$"
NAMESPACE_ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
# An object key prefix that stays under the snapshot root: relative, '/'-separated segments of a safe charset,
# no empty segment and no segment starting with a dot (so no '.' or '..').
R2_PREFIX_PATTERN = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*(/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*)*$"
# Exactly one {date:FORMAT} placeholder and no other braces.
KEY_PREFIX_PATTERN = r"^[^{}]*\{date:[^{}]+\}[^{}]*$"
KEY_PREFIX_MESSAGE = "must contain exactly one {date:FORMAT} placeholder and no other braces, e.g. 'lead:{date:%Y%m%d}'"
R2_PREFIX_MESSAGE = ("must be a relative path: segments of letters, digits, '_', '-', '.' joined by '/', none empty "
                     "or starting with '.', no leading '/'")
MAX_DESCRIPTION_CHARS = 2000
MAX_KEY_CHARS = 512  # Cloudflare's limit on a KV key
MAX_OWNERS, MAX_OWNER_CHARS = 20, 200
MAX_TAGS, MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS = 50, 128, 256

# Every rule lives in the generated JSON Schema so the Worker refuses what Python refuses (config/
# definition_cases.json is checked by both). Python additionally asks croniter, which the shared cases pin
# down to what `cron.cron_problem` (and the Worker's copy of it) already refuse.


class StrictModel(BaseModel):
    # strict: no coercion the JSON Schema would not allow ("yes" for a bool, "3" for an int).
    model_config = ConfigDict(extra="forbid", strict=True)


def _whole_number(value: object) -> object:
    # JSON cannot tell 3.0 from 3 in JavaScript, so the schema's "integer" accepts both: Python does too.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _iso_date(value: object) -> object:
    # What the schema's "format": "date" accepts; pydantic alone would also take timestamps and datetimes.
    if isinstance(value, dt.date) or (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        return value
    raise ValueError("must be a date YYYY-MM-DD")


class TimePartitioning(StrictModel):
    """BigQuery time partitioning of the table: one partition per day (hour, month, year) of a TIMESTAMP column."""

    column: Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="A TIMESTAMP column, e.g. cf_kv_fetched_at.")]
    granularity: Literal["hour", "day", "month", "year"] = Field("day", description="Width of one partition.")


class WarehouseDestination(StrictModel):
    """Where a source's tables land; a source whose tables are named by its extract (rest_api) has no `table`."""

    type: Literal["bigquery", "duckdb"] = Field("bigquery", description="Warehouse; DLT_PLATFORM_DESTINATION overrides it for local work.")
    dataset: Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="Warehouse dataset (BigQuery dataset, DuckDB schema).")]
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


class Destination(WarehouseDestination):
    table: Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="Table the records land in.")]


class Incremental(StrictModel):
    """Key-prefix windows: keys are date-prefixed, so a window is a prefix and a run lists only recent windows."""

    enabled: bool = True
    key_prefix: Annotated[
        str,
        Field(
            max_length=MAX_KEY_CHARS,
            pattern=KEY_PREFIX_PATTERN,
            # The Worker words a schema failure with "x-message", as Python does below.
            json_schema_extra={"x-message": KEY_PREFIX_MESSAGE},
            description="Key prefix template with one {date:FORMAT} placeholder (strftime), e.g. 'lead:{date:%Y%m%d}'.",
        ),
    ]
    step: Literal["day", "hour"] = Field("day", description="Width of one window (and of one Dagster partition).")
    lookback: Annotated[
        int, Field(ge=1, le=744, description="How many windows back from now a normal run loads."), BeforeValidator(_whole_number)
    ] = 3
    start: Annotated[dt.date, BeforeValidator(_iso_date)] = Field(
        ..., strict=False, description="First window that exists (first Dagster partition)."
    )

    @field_validator("key_prefix", mode="before")
    @classmethod
    def _one_date_placeholder(cls, value: object) -> object:
        # The pattern says the same; this names the rule instead of quoting the regex.
        if isinstance(value, str) and not re.fullmatch(KEY_PREFIX_PATTERN, value):
            raise ValueError(KEY_PREFIX_MESSAGE)
        return value


# Explicit keys replace the listing, so they cannot be combined with enabled key-prefix windows.
_KEYS_WITHOUT_WINDOWS = {
    "if": {
        "required": ["incremental"],
        "properties": {"incremental": {"type": "object", "properties": {"enabled": {"const": True}}}},
    },
    "then": {"properties": {"keys": {"type": "null", "x-message": "keys and incremental cannot both be set: explicit keys replace the listing"}}},
}


class KVExtract(StrictModel):
    model_config = ConfigDict(json_schema_extra=_KEYS_WITHOUT_WINDOWS)

    namespace_id: Annotated[str, Field(pattern=NAMESPACE_ID_PATTERN, description="Cloudflare KV namespace id (REST transport).")]
    namespace_title: Annotated[str, Field(pattern=NAME_PATTERN, description="Namespace title; the Worker's KV binding name.")]
    prefix: Annotated[str, Field(max_length=MAX_KEY_CHARS)] | None = Field(None, description="Only keys starting with this prefix.")
    transport: Literal["rest", "worker"] = Field(
        "rest", description="rest: Cloudflare API with an API token; worker: the orchestrator's /internal/kv pages."
    )
    incremental: Incremental | None = None
    keys: list[Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS)]] | None = Field(
        None, validate_default=True, description="Explicit keys to load instead of a listing (full backfills in batches)."
    )

    @field_validator("keys")
    @classmethod
    def _keys_or_windows(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        incremental = info.data.get("incremental")
        if value is not None and incremental is not None and incremental.enabled:
            raise ValueError("keys and incremental cannot both be set: explicit keys replace the listing")
        return value


_PREFIX_WHEN_SNAPSHOTTING = {
    "if": {"required": ["raw_snapshot"], "properties": {"raw_snapshot": {"const": True}}},
    "then": {
        "required": ["r2_prefix"],
        "x-message": "r2_prefix is required when raw_snapshot is true",
        "properties": {"r2_prefix": {"type": "string", "x-message": "r2_prefix is required when raw_snapshot is true"}},
    },
}


class Staging(StrictModel):
    model_config = ConfigDict(json_schema_extra=_PREFIX_WHEN_SNAPSHOTTING)

    raw_snapshot: bool = Field(False, description="Keep compressed NDJSON of every extraction in R2 (or the local folder).")
    r2_prefix: Annotated[
        str, Field(max_length=512, pattern=R2_PREFIX_PATTERN, json_schema_extra={"x-message": R2_PREFIX_MESSAGE})
    ] | None = Field(
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
    "adds its columns; `tables: freeze` refuses new tables, the first load's included. Default: evolve.")


class SchemaContract(StrictModel):
    """dlt's schema contract, entity by entity (TSchemaContractDict); an entity left out evolves."""

    tables: SchemaEvolutionMode = "evolve"
    columns: SchemaEvolutionMode = "evolve"
    data_type: SchemaEvolutionMode = "evolve"


class SourceBase(StrictModel):
    """What every source has, whatever its type: an id, where its rows go, when it runs, who owns it."""

    source_id: Annotated[str, Field(pattern=SOURCE_ID_PATTERN, description="Stable id; also the dlt pipeline name.")]
    enabled: bool = True
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)] | None = None
    schedule: Annotated[
        str, Field(pattern=CRON_PATTERN, description=CRON_DESCRIPTION, json_schema_extra={"x-message": CRON_SYNTAX_MESSAGE})
    ] | None = None
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
    destination: Destination
    staging: Staging = Field(default_factory=Staging)
    schema_contract: SchemaEvolutionMode | SchemaContract | None = Field(None, description=SCHEMA_CONTRACT_DESCRIPTION)

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


class KVSourceDefinition(SourceBase):
    """A Cloudflare Workers KV namespace, listed (or read key by key) and loaded one row per key."""

    source_type: Literal["cloudflare_kv"]
    extract: KVExtract


# Webhook feeds: senders POST to the Worker's /hooks/<source_id>; the Worker verifies the signature on the raw
# bytes, keeps the delivery (R2 + D1) and Dagster loads waiting deliveries in batches, merging on the delivery id.
HEADER_NAME_PATTERN = r"^[A-Za-z0-9\-]{1,64}$"
# Worker secrets are environment bindings: upper-case names.
SECRET_NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"
# A dotted path to a field of the JSON body, e.g. "id" or "data.object.id".
JSON_PATH_PATTERN = r"^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9_\-]{1,64}){0,7}$"
MAX_WEBHOOK_BODY_BYTES = 25 * 1024 * 1024

# A webhook's signing key is a Worker secret of its own: naming a platform secret (the operator token, the session
# key ...) would make the intake verify HMACs keyed with it. The list is dlt_platform/contract.py's.
WEBHOOK_PLATFORM_SECRET_MESSAGE = (f"names a platform secret ({', '.join(p + '*' for p in PLATFORM_SECRET_PREFIXES)}, "
                                   f"names with {PLATFORM_SECRET_INFIX}): a webhook's signing key needs a Worker "
                                   "secret of its own")


def _not_a_platform_secret_name(name: str) -> str:
    if is_platform_secret(name):
        raise ValueError(f"{name} {WEBHOOK_PLATFORM_SECRET_MESSAGE}")
    return name


WebhookSecretName = Annotated[str, Field(pattern=SECRET_NAME_PATTERN, json_schema_extra={"allOf": [{
    "pattern": f"^(?!(?:{'|'.join(PLATFORM_SECRET_PREFIXES)})|.*{PLATFORM_SECRET_INFIX})",
    "x-message": WEBHOOK_PLATFORM_SECRET_MESSAGE}]}), AfterValidator(_not_a_platform_secret_name)]

_HMAC_NEEDS_HEADER = {
    "if": {"properties": {"preset": {"const": "hmac"}}},
    "then": {
        "required": ["header"],
        "x-message": "header is required when preset is hmac",
        "properties": {"header": {"type": "string", "x-message": "header is required when preset is hmac"}},
    },
}


class SignatureCheck(StrictModel):
    """How the Worker verifies a delivery. Presets follow each sender's documented scheme: github
    (X-Hub-Signature-256), stripe (Stripe-Signature t=/v1=), svix (standard-webhooks svix-id/-timestamp/-signature);
    hmac is a generic HMAC of the raw body (or of "timestamp.body" when timestamp_header is set)."""

    model_config = ConfigDict(json_schema_extra=_HMAC_NEEDS_HEADER)

    preset: Literal["github", "stripe", "svix", "hmac"]
    secret_names: list[WebhookSecretName] = Field(
        min_length=1, max_length=2,
        description="Worker secrets holding the signing key; two while a key is rotated (either one verifies).",
    )
    header: Annotated[str, Field(pattern=HEADER_NAME_PATTERN)] | None = Field(
        None, validate_default=True, description="hmac: the header carrying the signature.")
    algorithm: Literal["sha1", "sha256", "sha512"] = Field("sha256", description="hmac: the hash function.")
    encoding: Literal["hex", "base64"] = Field("hex", description="hmac: how the signature is written.")
    signature_prefix: Annotated[str, Field(max_length=32)] | None = Field(
        None, description="hmac: text before the signature in its header, e.g. 'sha256='.")
    timestamp_header: Annotated[str, Field(pattern=HEADER_NAME_PATTERN)] | None = Field(
        None, description="hmac: header with the send time (unix seconds), signed as '<timestamp>.<body>'.")
    tolerance_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        300, description="Signed timestamps older or newer than this are refused (stripe, svix, hmac with timestamp).")

    @field_validator("header")
    @classmethod
    def _hmac_names_its_header(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("preset") == "hmac":
            raise ValueError("header is required when preset is hmac")
        return value


class FieldLocation(StrictModel):
    """Where a value is found in a delivery: a request header or a field of the JSON body."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    header: Annotated[str, Field(pattern=HEADER_NAME_PATTERN)] | None = None
    json_path: Annotated[str, Field(pattern=JSON_PATH_PATTERN)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> FieldLocation:
        if (self.header is None) == (self.json_path is None):
            raise ValueError("set exactly one of header or json_path")
        return self


class DeliveryBatch(StrictModel):
    max_deliveries: Annotated[int, Field(ge=1, le=10_000)] = Field(
        500, description="A run starts once this many deliveries wait...")
    max_wait_seconds: Annotated[int, Field(ge=1, le=86_400)] = Field(
        60, description="...or once the oldest waiting delivery is this old.")


_HMAC_NEEDS_DELIVERY_ID = {
    "if": {"properties": {"signature": {"properties": {"preset": {"const": "hmac"}}}}},
    "then": {
        "required": ["delivery_id"],
        "x-message": "delivery_id is required when signature.preset is hmac",
        "properties": {"delivery_id": {"type": "object", "x-message": "delivery_id is required when signature.preset is hmac"}},
    },
}


# GitHub's deliveries share big objects (repository, sender, organization, installation: ~100 fields each) and
# each event type adds its own (pull_request, issue, workflow_run...). One table of every event type flattened
# completely is ~3,000 columns wide; a table per event type, objects flattened one level and deeper ones kept as
# JSON, stays in the low hundreds (docs/webhooks.md, "Table shapes").
GITHUB_PRESET_SHAPE = {"table_per_event_type": True, "max_table_nesting": 1}


class WebhookExtract(StrictModel):
    model_config = ConfigDict(json_schema_extra=_HMAC_NEEDS_DELIVERY_ID)

    signature: SignatureCheck
    delivery_id: FieldLocation | None = Field(
        None, validate_default=True,
        description="Where the delivery id is; default the preset's (X-GitHub-Delivery, the Stripe event id, svix-id).",
    )
    event_type: FieldLocation | None = Field(
        None, description="Where the event type is; default the preset's (X-GitHub-Event, Stripe's type, none).")
    max_body_bytes: Annotated[int, Field(ge=1, le=MAX_WEBHOOK_BODY_BYTES)] = 1024 * 1024
    content_types: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=lambda: ["application/json"], min_length=1, max_length=10)
    batch: DeliveryBatch = Field(default_factory=DeliveryBatch)
    table_per_event_type: bool | None = Field(
        None, description="Each event type's bodies in a table of their own, <table>__<event_type>, while <table> "
                          "keeps one row per delivery (audit columns and raw body). Default: on for the github "
                          "preset, off otherwise.")
    max_table_nesting: Annotated[int, Field(ge=0, le=10)] | None = Field(
        None, description="Body objects nested deeper than this stay whole in JSON columns (native JSON in "
                          "BigQuery), and deeper lists make no child tables. Default: 1 for the github preset, "
                          "unbounded otherwise.")

    def event_type_tables(self) -> bool:
        """Whether bodies go to one table per event type (the definition's choice, else the preset's)."""
        if self.table_per_event_type is not None:
            return self.table_per_event_type
        return self.signature.preset == "github" and GITHUB_PRESET_SHAPE["table_per_event_type"]

    def nesting_limit(self) -> int | None:
        """dlt's max_table_nesting for the bodies (the definition's, else the preset's; None: dlt's default)."""
        if self.max_table_nesting is not None:
            return self.max_table_nesting
        return GITHUB_PRESET_SHAPE["max_table_nesting"] if self.signature.preset == "github" else None

    @field_validator("delivery_id")
    @classmethod
    def _hmac_names_delivery_id(cls, value: FieldLocation | None, info: ValidationInfo) -> FieldLocation | None:
        signature = info.data.get("signature")
        if value is None and signature is not None and signature.preset == "hmac":
            raise ValueError("delivery_id is required when signature.preset is hmac")
        return value


class WebhookSourceDefinition(SourceBase):
    """A webhook feed: deliveries verified and kept by the Worker, loaded in batches merged on the delivery id."""

    source_type: Literal["webhook"]
    extract: WebhookExtract


# REST APIs: `extract` is dlt's RESTAPIConfig (client, resources, resource_defaults) in its JSON-expressible form,
# so a definition reads like dlt's documentation, plus the platform's `http` limits. Secrets are never values in a
# definition: every secret field takes {"env": "NAME"}, read from the environment when a run starts.
RESOURCE_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"  # the resource's table name as is (dlt would not rename it)
BASE_URL_PATTERN = r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[^\s?#@]*)?$"  # no credentials, query or fragment
ENDPOINT_PATH_PATTERN = r"^[^\s?#]{1,1024}$"
# `{resources.<parent>.<field>}` in a child's path or params: dlt fills it from each parent item.
PARENT_REFERENCE = re.compile(r"\{resources\.([^.{}]+)\.([^{}]+)\}")
SECRET_MESSAGE = 'must be {"env": "NAME"}: secrets are read from the environment, never written in a definition'
# The platform's own secrets and settings share the container with the sources' secrets: the Worker's tokens and
# session key, R2, BigQuery and Cloudflare credentials, Dagster's database, dlt's SECTION__KEY configuration. A
# definition never names one (whatever DLT_SOURCE_SECRETS lists), so no source can send them to an API. The list is
# in dlt_platform/contract.py (the Worker's intake reads it too).
PLATFORM_SECRET_MESSAGE = ("names a platform secret (DLT_*, DAGSTER_*, CLOUDFLARE_*, GOOGLE_*, BIGQUERY_*, AWS_*, "
                           "ADMIN_*, ALERT_*, names with __): a source may use only the secrets DLT_SOURCE_SECRETS "
                           "lists for sources")
# The same rule for the Worker's validator, as a pattern the schema can carry.
NOT_PLATFORM_SECRET_PATTERN = f"^(?!(?:{'|'.join(PLATFORM_SECRET_PREFIXES)})|.*{PLATFORM_SECRET_INFIX})"


def is_platform_secret(name: str) -> bool:
    return name.startswith(PLATFORM_SECRET_PREFIXES) or PLATFORM_SECRET_INFIX in name


class EnvSecret(StrictModel):
    """A secret read from the environment (the container's env, `.env` locally) when a run starts."""

    model_config = ConfigDict(json_schema_extra={"x-message": SECRET_MESSAGE})

    env: Annotated[str, Field(pattern=SECRET_NAME_PATTERN, description="Environment variable holding the secret.",
                              json_schema_extra={"allOf": [{"pattern": NOT_PLATFORM_SECRET_PATTERN,
                                                            "x-message": PLATFORM_SECRET_MESSAGE}]})]

    @field_validator("env")
    @classmethod
    def _not_a_platform_secret(cls, name: str) -> str:
        if is_platform_secret(name):
            raise ValueError(f"{name} {PLATFORM_SECRET_MESSAGE}")
        return name


def _secret_not_literal(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(SECRET_MESSAGE)
    return value


Secret = Annotated[EnvSecret, BeforeValidator(_secret_not_literal)]


def _tag_check(kind: str, tags: tuple[str, ...]):
    """A clear message for an unknown `type` of a tagged union (pydantic's own lists tags in quotes)."""
    message = f"unknown {kind} type: must be one of {', '.join(tags)}"
    TAGGED_UNION_MESSAGES[frozenset(tags)] = message

    def check(value: object) -> object:
        if isinstance(value, dict) and value.get("type") not in tags:
            raise ValueError(f"{message} (got {json.dumps(value.get('type'))})")
        return value

    return BeforeValidator(check)


TAGGED_UNION_MESSAGES: dict[frozenset, str] = {}


class BearerAuth(StrictModel):
    type: Literal["bearer"]
    token: Secret


class ApiKeyAuth(StrictModel):
    type: Literal["api_key"]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] = Field(
        "Authorization", description="Header, query parameter or cookie name.")
    api_key: Secret
    location: Literal["header", "query", "param", "cookie"] = "header"


class HttpBasicAuth(StrictModel):
    type: Literal["http_basic"]
    username: Annotated[str, Field(min_length=1, max_length=256)] | EnvSecret
    password: Secret


class OAuth2ClientCredentialsAuth(StrictModel):
    type: Literal["oauth2_client_credentials"]
    access_token_url: Annotated[str, Field(pattern=BASE_URL_PATTERN)]
    client_id: Annotated[str, Field(min_length=1, max_length=256)] | EnvSecret
    client_secret: Secret
    access_token_request_data: dict[str, str | int | bool] | None = None
    default_token_expiration: Annotated[int, Field(ge=1, le=86_400 * 30)] | None = None


_AUTH_TAGS = ("bearer", "api_key", "http_basic", "oauth2_client_credentials")
RestAuth = Annotated[
    BearerAuth | ApiKeyAuth | HttpBasicAuth | OAuth2ClientCredentialsAuth,
    Field(discriminator="type"), _tag_check("auth", _AUTH_TAGS),
]

JsonPath = Annotated[str, Field(min_length=1, max_length=256)]
ParamName = Annotated[str, Field(min_length=1, max_length=128)]
Count = Annotated[int, Field(ge=0, le=1_000_000_000), BeforeValidator(_whole_number)]


class SinglePagePaginator(StrictModel):
    type: Literal["single_page"]


class HeaderLinkPaginator(StrictModel):
    type: Literal["header_link"]
    links_next_key: Annotated[str, Field(min_length=1, max_length=64)] = "next"


class JsonLinkPaginator(StrictModel):
    type: Literal["json_link"]
    next_url_path: JsonPath | None = None


class CursorPaginator(StrictModel):
    type: Literal["cursor"]
    cursor_path: JsonPath = "cursors.next"
    cursor_param: ParamName | None = None
    cursor_body_path: JsonPath | None = None
    stop_after_empty_page: bool | None = None
    has_more_path: JsonPath | None = None


class HeaderCursorPaginator(StrictModel):
    type: Literal["header_cursor"]
    cursor_key: Annotated[str, Field(pattern=HEADER_NAME_PATTERN)] = "next"
    cursor_param: ParamName = "cursor"


class OffsetPaginator(StrictModel):
    type: Literal["offset"]
    limit: Annotated[int, Field(ge=1, le=100_000), BeforeValidator(_whole_number)]
    offset: Count | None = None
    offset_param: ParamName | None = None
    limit_param: ParamName | None = None
    total_path: JsonPath | None = None
    maximum_offset: Count | None = None
    stop_after_empty_page: bool | None = None
    has_more_path: JsonPath | None = None


class PageNumberPaginator(StrictModel):
    type: Literal["page_number"]
    base_page: Count | None = None
    page: Count | None = None
    page_param: ParamName | None = None
    total_path: JsonPath | None = None
    maximum_page: Count | None = None
    stop_after_empty_page: bool | None = None
    has_more_path: JsonPath | None = None


_PAGINATOR_TAGS = ("single_page", "header_link", "json_link", "cursor", "header_cursor", "offset", "page_number")
RestPaginator = Annotated[
    SinglePagePaginator | HeaderLinkPaginator | JsonLinkPaginator | CursorPaginator | HeaderCursorPaginator
    | OffsetPaginator | PageNumberPaginator,
    Field(discriminator="type"), _tag_check("paginator", _PAGINATOR_TAGS),
]


class ResolveParam(StrictModel):
    """A child resource's parameter taken from each item of its parent resource (dlt: `type: resolve`)."""

    type: Literal["resolve"]
    resource: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN, description="The parent resource's name.")]
    field: JsonPath


class RestIncremental(StrictModel):
    """dlt's incremental for an endpoint: the cursor field of the items and the parameter that sends its last
    value, so a run asks only for what changed since the previous one."""

    cursor_path: JsonPath
    start_param: ParamName | None = None
    end_param: ParamName | None = None
    initial_value: Annotated[str, Field(max_length=256)] | int | None = None
    end_value: Annotated[str, Field(max_length=256)] | int | None = None


ParamValue = Annotated[str, Field(max_length=2048)] | int | float | bool | ResolveParam


class RestEndpoint(StrictModel):
    # `json` is dlt's name for the body; the attribute is json_body (BaseModel has a json method). Dumps use
    # the name dlt and the Worker know.
    model_config = ConfigDict(serialize_by_alias=True)

    path: Annotated[str, Field(pattern=ENDPOINT_PATH_PATTERN, description="Relative to client.base_url; may use "
                                                                          "{resources.<parent>.<field>}.")]
    method: Literal["GET", "POST"] = "GET"
    params: dict[ParamName, ParamValue] | None = None
    json_body: dict[str, object] | None = Field(None, alias="json", description="JSON body of a POST request.")
    data_selector: JsonPath | None = Field(None, description="JSONPath of the items in a response; default: detected.")
    paginator: RestPaginator | None = None
    incremental: RestIncremental | None = None


WriteDisposition = Literal["replace", "merge", "append"]
PrimaryKey = Annotated[str, Field(min_length=1, max_length=128)] | Annotated[
    list[Annotated[str, Field(min_length=1, max_length=128)]], Field(min_length=1, max_length=8)]


class RestResourceDefaults(StrictModel):
    endpoint: RestEndpoint | None = None
    primary_key: PrimaryKey | None = None
    write_disposition: WriteDisposition | None = None
    max_table_nesting: Annotated[int, Field(ge=0, le=10)] | None = None


class RestResourceEndpointDefaults(StrictModel):
    """What resource_defaults.endpoint may hold: everything but the path."""

    params: dict[ParamName, ParamValue] | None = None
    data_selector: JsonPath | None = None
    paginator: RestPaginator | None = None


class RestDefaults(RestResourceDefaults):
    endpoint: RestResourceEndpointDefaults | None = None


class RestResource(RestResourceDefaults):
    """One endpoint, one table (named after the resource)."""

    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN, description="Resource name; also its table name.")]
    endpoint: RestEndpoint
    include_from_parent: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        None, max_length=20, description="Fields of the parent item copied into each child row (_<parent>_<field>).")
    selected: bool = Field(True, description="false: fetched only to feed child resources, not loaded.")


class RestClient(StrictModel):
    base_url: Annotated[str, Field(pattern=BASE_URL_PATTERN, description="https://api.example.com/v1; no credentials.")]
    headers: dict[Annotated[str, Field(pattern=HEADER_NAME_PATTERN)], Annotated[str, Field(max_length=1024)] | EnvSecret
                  ] | None = Field(None, description='Sent with every request; a value may be {"env": "NAME"}.')
    auth: RestAuth | None = None
    paginator: RestPaginator | None = None


class HttpLimits(StrictModel):
    """The platform's limits on top of dlt: a request budget per host and bounded retries."""

    requests_per_second: Annotated[float, Field(gt=0, le=1000)] | None = Field(
        None, strict=False, description="At most this many requests per second to one host.")
    requests_per_window: Annotated[int, Field(ge=1, le=1_000_000), BeforeValidator(_whole_number)] | None = Field(
        None, description="At most this many requests to one host in any window_seconds (an API's quota).")
    window_seconds: Annotated[int, Field(ge=1, le=86_400), BeforeValidator(_whole_number)] = 60
    max_attempts: Annotated[int, Field(ge=1, le=10), BeforeValidator(_whole_number)] = Field(
        5, description="Attempts per request on 429, 5xx and connection errors.")
    backoff_seconds: Annotated[float, Field(ge=0, le=60)] = Field(
        1.0, strict=False, description="Exponential back-off base (also after 'Retry-After: 0').")
    max_retry_delay_seconds: Annotated[float, Field(ge=1, le=600)] = Field(
        60.0, strict=False, description="Longest wait between attempts, Retry-After included.")


def parent_fields(resource: RestResource) -> list[tuple[str, str]]:
    """(parent resource, field) pairs a child resource reads: resolve params and {resources.<name>.<field>}."""
    params = resource.endpoint.params or {}
    pairs = [(value.resource, value.field) for value in params.values() if isinstance(value, ResolveParam)]
    texts = [resource.endpoint.path, *[value for value in params.values() if isinstance(value, str)]]
    pairs += [match for text in texts for match in PARENT_REFERENCE.findall(text)]
    return list(dict.fromkeys(pairs))


def parent_references(resource: RestResource) -> list[str]:
    """Names of the resources a child resource reads from."""
    return list(dict.fromkeys(parent for parent, _field in parent_fields(resource)))


class RestPartitions(StrictModel):
    """Time-window partitions of a rest_api source: a partition run reads each incremental resource from the
    window's start to its end (dlt's initial_value/end_value: a backfill that leaves the cursors alone)."""

    step: Literal["day", "hour"] = Field("day", description="Width of one window (one Dagster partition).")
    start: Annotated[dt.date, BeforeValidator(_iso_date)] = Field(
        ..., strict=False, description="First window (first Dagster partition).")
    lookback: Annotated[
        int, Field(ge=1, le=744, description="Windows a scheduled run reads, the one in progress included."),
        BeforeValidator(_whole_number)] = 1


class RestApiExtract(StrictModel):
    client: RestClient
    resources: list[RestResource] = Field(min_length=1, max_length=50)
    resource_defaults: RestDefaults | None = None
    http: HttpLimits = Field(default_factory=HttpLimits)
    partitions: RestPartitions | None = Field(None, description="Dagster time partitions over the incremental "
                                                                "resources' cursors.")

    @field_validator("resources")
    @classmethod
    def _parents_exist(cls, resources: list[RestResource]) -> list[RestResource]:
        # The same rules are in the Worker (worker/src/rest_api.ts): a schema cannot compare values.
        names = [resource.name for resource in resources]
        problems = []
        for index, resource in enumerate(resources):
            if resource.name in names[:index]:
                problems.append(f"{index}: duplicate resource name '{resource.name}'")
            for parent in parent_references(resource):
                if parent not in names or parent == resource.name:
                    problems.append(f"{index}: resource '{resource.name}' refers to missing parent resource "
                                    f"'{parent}' (resources: {', '.join(names)})")
            incremental = resource.endpoint.incremental
            if parent_references(resource) and incremental is not None and (
                    incremental.start_param is None or incremental.initial_value is None):
                problems.append(f"{index}: child resource '{resource.name}' keeps a cursor per parent: its "
                                "incremental needs start_param and initial_value")
        if problems:
            raise ValueError("; ".join(problems))
        return resources

    def effective(self, resource: RestResource, field: str):
        """A resource's own setting, else resource_defaults'."""
        value = getattr(resource, field)
        if value is None and self.resource_defaults is not None:
            value = getattr(self.resource_defaults, field)
        return value


class RestApiSourceDefinition(SourceBase):
    """An HTTP API read through dlt's rest_api source: one table per resource, all loaded in one run."""

    source_type: Literal["rest_api"]
    destination: WarehouseDestination
    extract: RestApiExtract

    @field_validator("extract")
    @classmethod
    def _merge_needs_a_key(cls, extract: RestApiExtract, info: ValidationInfo) -> RestApiExtract:
        destination = info.data.get("destination")
        default = destination.write_disposition if destination is not None else "replace"
        for index, resource in enumerate(extract.resources):
            disposition = extract.effective(resource, "write_disposition") or default
            if disposition == "merge" and extract.effective(resource, "primary_key") is None:
                raise ValueError(f"resources.{index}: resource '{resource.name}' merges but has no primary_key")
        return extract


# One model per source_type; `source_type` picks the model (here and, through the generated schema, in the Worker).
DEFINITION_MODELS: dict[str, type[SourceBase]] = {
    "cloudflare_kv": KVSourceDefinition,
    "webhook": WebhookSourceDefinition,
    "rest_api": RestApiSourceDefinition,
}
SOURCE_TYPES = tuple(DEFINITION_MODELS)
SourceDefinition = KVSourceDefinition | WebhookSourceDefinition | RestApiSourceDefinition


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
        raise DefinitionError(f"{path}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None


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
        branches.append({
            "if": {"required": ["source_type"], "properties": {"source_type": {"const": source_type}}},
            "then": {"$ref": f"#/$defs/{model.__name__}"},
        })
    return _for_the_worker({
        "$id": "https://dlt-platform/config/source.schema.json",
        "title": "SourceDefinition",
        "type": "object",
        "required": ["source_type"],
        "properties": {"source_type": {"enum": list(SOURCE_TYPES), "x-message": f"must be one of {', '.join(SOURCE_TYPES)}"}},
        "allOf": branches,
        "$defs": defs,
    })


def _for_the_worker(node: object) -> object:
    """Rewrites two shapes pydantic generates into keywords the Worker's validator enforces.

    A dict with patterned keys is `patternProperties`, which leaves other keys unchecked: it becomes
    `propertyNames` + `additionalProperties`. pydantic writes a union tagged by `type` as oneOf + discriminator; the Worker's validator knows neither, and
    oneOf reports every branch's failures. As if/then per tag (as for source_type) an unknown tag is one message
    and a known one is checked against its own model only."""
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
            "properties": {tag: {"type": "string", "pattern": f"^({'|'.join(mapping)})$",
                                 "x-message": TAGGED_UNION_MESSAGES[frozenset(mapping)]}},
            "allOf": [{"if": {"required": [tag], "properties": {tag: {"const": value}}}, "then": {"$ref": ref}}
                      for value, ref in mapping.items()],
        }
    if "patternProperties" in node and len(node["patternProperties"]) == 1:
        node = dict(node)
        [(pattern, values)] = node.pop("patternProperties").items()
        node["propertyNames"] = {"pattern": pattern}
        node["additionalProperties"] = values
    return {key: _for_the_worker(value) for key, value in node.items()}


def render_json_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
