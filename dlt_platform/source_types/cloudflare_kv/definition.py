"""The definition of a cloudflare_kv source: a Workers KV namespace, listed (or read key by key) and loaded one row
per key, optionally in date-prefixed key windows."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonDict

from dlt_platform.definition_base import (
    OneTableSource,
    StrictModel,
    iso_date,
    whole_number,
)

# Ids and names that end up in URL paths (KV REST API, /internal/kv/<title>/page): no separators, no dots.
NAME_PATTERN = r"^[A-Za-z0-9_\-]{1,128}$"
NAMESPACE_ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
# Exactly one {date:FORMAT} placeholder and no other braces.
KEY_PREFIX_PATTERN = r"^[^{}]*\{date:[^{}]+\}[^{}]*$"
KEY_PREFIX_MESSAGE = "must contain exactly one {date:FORMAT} placeholder and no other braces, e.g. 'lead:{date:%Y%m%d}'"
MAX_KEY_CHARS = 512  # Cloudflare's limit on a KV key


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
        int,
        Field(ge=1, le=744, description="How many windows back from now a normal run loads."),
        BeforeValidator(whole_number),
    ] = 3
    start: Annotated[dt.date, BeforeValidator(iso_date)] = Field(
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
_KEYS_WITHOUT_WINDOWS: JsonDict = {
    "if": {
        "required": ["incremental"],
        "properties": {"incremental": {"type": "object", "properties": {"enabled": {"const": True}}}},
    },
    "then": {
        "properties": {
            "keys": {
                "type": "null",
                "x-message": "keys and incremental cannot both be set: explicit keys replace the listing",
            }
        }
    },
}


class KVExtract(StrictModel):
    model_config = ConfigDict(json_schema_extra=_KEYS_WITHOUT_WINDOWS)

    namespace_id: Annotated[
        str, Field(pattern=NAMESPACE_ID_PATTERN, description="Cloudflare KV namespace id (REST transport).")
    ]
    namespace_title: Annotated[
        str, Field(pattern=NAME_PATTERN, description="Namespace title; the Worker's KV binding name.")
    ]
    prefix: Annotated[str, Field(max_length=MAX_KEY_CHARS)] | None = Field(
        None, description="Only keys starting with this prefix."
    )
    transport: Literal["rest", "worker"] = Field(
        "rest", description="rest: Cloudflare API with an API token; worker: the orchestrator's /internal/kv pages."
    )
    incremental: Incremental | None = None
    keys: list[Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS)]] | None = Field(
        None,
        validate_default=True,
        description="Explicit keys to load instead of a listing (full backfills in batches).",
    )

    @field_validator("keys")
    @classmethod
    def _keys_or_windows(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        incremental = info.data.get("incremental")
        if value is not None and incremental is not None and incremental.enabled:
            raise ValueError("keys and incremental cannot both be set: explicit keys replace the listing")
        return value


class KVSourceDefinition(OneTableSource):
    """A Cloudflare Workers KV namespace, listed (or read key by key) and loaded one row per key."""

    source_type: Literal["cloudflare_kv"]
    extract: KVExtract
