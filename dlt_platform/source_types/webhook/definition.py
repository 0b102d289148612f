"""The definition of a webhook source."""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict

from dlt_platform.contract import PLATFORM_SECRET_INFIX, PLATFORM_SECRET_PREFIXES
from dlt_platform.definition_base import (
    HEADER_NAME_PATTERN,
    SECRET_NAME_PATTERN,
    OneTableSource,
    StrictModel,
    is_platform_secret,
)

# Webhook feeds: senders POST to the Worker's /hooks/<source_id>; the Worker verifies the signature on the raw
# bytes, keeps the delivery (R2 + D1) and Dagster loads waiting deliveries in batches, merging on the delivery id.
# A dotted path to a field of the JSON body, e.g. "id" or "data.object.id".
JSON_PATH_PATTERN = r"^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9_\-]{1,64}){0,7}$"
MAX_WEBHOOK_BODY_BYTES = 25 * 1024 * 1024

# A webhook's signing key is a Worker secret of its own: naming a platform secret (the operator token, the session
# key ...) would make the intake verify HMACs keyed with it. The list is dlt_platform/contract.py's.
WEBHOOK_PLATFORM_SECRET_MESSAGE = (
    f"names a platform secret ({', '.join(p + '*' for p in PLATFORM_SECRET_PREFIXES)}, "
    f"names with {PLATFORM_SECRET_INFIX}): a webhook's signing key needs a Worker "
    "secret of its own"
)


def _not_a_platform_secret_name(name: str) -> str:
    if is_platform_secret(name):
        raise ValueError(f"{name} {WEBHOOK_PLATFORM_SECRET_MESSAGE}")
    return name


WebhookSecretName = Annotated[
    str,
    Field(
        pattern=SECRET_NAME_PATTERN,
        json_schema_extra={
            "allOf": [
                {
                    "pattern": f"^(?!(?:{'|'.join(PLATFORM_SECRET_PREFIXES)})|.*{PLATFORM_SECRET_INFIX})",
                    "x-message": WEBHOOK_PLATFORM_SECRET_MESSAGE,
                }
            ]
        },
    ),
    AfterValidator(_not_a_platform_secret_name),
]

_HMAC_NEEDS_HEADER: JsonDict = {
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
        min_length=1,
        max_length=2,
        description="Worker secrets holding the signing key; two while a key is rotated (either one verifies).",
    )
    header: Annotated[str, Field(pattern=HEADER_NAME_PATTERN)] | None = Field(
        None, validate_default=True, description="hmac: the header carrying the signature."
    )
    algorithm: Literal["sha1", "sha256", "sha512"] = Field("sha256", description="hmac: the hash function.")
    encoding: Literal["hex", "base64"] = Field("hex", description="hmac: how the signature is written.")
    signature_prefix: Annotated[str, Field(max_length=32)] | None = Field(
        None, description="hmac: text before the signature in its header, e.g. 'sha256='."
    )
    timestamp_header: Annotated[str, Field(pattern=HEADER_NAME_PATTERN)] | None = Field(
        None, description="hmac: header with the send time (unix seconds), signed as '<timestamp>.<body>'."
    )
    tolerance_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        300, description="Signed timestamps older or newer than this are refused (stripe, svix, hmac with timestamp)."
    )

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
        500, description="A run starts once this many deliveries wait..."
    )
    max_wait_seconds: Annotated[int, Field(ge=1, le=86_400)] = Field(
        60, description="...or once the oldest waiting delivery is this old."
    )


_HMAC_NEEDS_DELIVERY_ID: JsonDict = {
    "if": {"properties": {"signature": {"properties": {"preset": {"const": "hmac"}}}}},
    "then": {
        "required": ["delivery_id"],
        "x-message": "delivery_id is required when signature.preset is hmac",
        "properties": {
            "delivery_id": {"type": "object", "x-message": "delivery_id is required when signature.preset is hmac"}
        },
    },
}


# GitHub's deliveries share big objects (repository, sender, organization, installation: ~100 fields each) and
# each event type adds its own (pull_request, issue, workflow_run...). One table of every event type flattened
# completely is ~3,000 columns wide; a table per event type, objects flattened one level and deeper ones kept as
# JSON, stays in the low hundreds (docs/webhooks.md, "Table shapes").
class PresetShape(TypedDict):
    table_per_event_type: bool
    max_table_nesting: int


GITHUB_PRESET_SHAPE: PresetShape = {"table_per_event_type": True, "max_table_nesting": 1}


class WebhookExtract(StrictModel):
    model_config = ConfigDict(json_schema_extra=_HMAC_NEEDS_DELIVERY_ID)

    signature: SignatureCheck
    delivery_id: FieldLocation | None = Field(
        None,
        validate_default=True,
        description="Where the delivery id is; default the preset's (X-GitHub-Delivery, the Stripe event id, svix-id).",
    )
    event_type: FieldLocation | None = Field(
        None, description="Where the event type is; default the preset's (X-GitHub-Event, Stripe's type, none)."
    )
    max_body_bytes: Annotated[int, Field(ge=1, le=MAX_WEBHOOK_BODY_BYTES)] = 1024 * 1024
    content_types: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=lambda: ["application/json"], min_length=1, max_length=10
    )
    batch: DeliveryBatch = Field(default_factory=DeliveryBatch)
    table_per_event_type: bool | None = Field(
        None,
        description="Each event type's bodies in a table of their own, <table>__<event_type>, while <table> "
        "keeps one row per delivery (audit columns and raw body). Default: on for the github "
        "preset, off otherwise.",
    )
    max_table_nesting: Annotated[int, Field(ge=0, le=10)] | None = Field(
        None,
        description="Body objects nested deeper than this stay whole in JSON columns (native JSON in "
        "BigQuery), and deeper lists make no child tables. Default: 1 for the github preset, "
        "unbounded otherwise.",
    )

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


class WebhookSourceDefinition(OneTableSource):
    """A webhook feed: deliveries verified and kept by the Worker, loaded in batches merged on the delivery id."""

    source_type: Literal["webhook"]
    extract: WebhookExtract
