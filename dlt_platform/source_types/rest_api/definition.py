"""The definition of a rest_api source."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from dlt_platform.definition_base import (
    HEADER_NAME_PATTERN,
    NOT_PLATFORM_SECRET_PATTERN,
    PLATFORM_SECRET_MESSAGE,
    SECRET_MESSAGE,
    SECRET_NAME_PATTERN,
    SourceBase,
    StrictModel,
    WarehouseDestination,
    WriteDisposition,
    is_platform_secret,
    iso_date,
    tagged_union_check,
    whole_number,
)

# REST APIs: `extract` is dlt's RESTAPIConfig (client, resources, resource_defaults) in its JSON-expressible form,
# so a definition reads like dlt's documentation, plus the platform's `http` limits. Secrets are never values in a
# definition: every secret field takes {"env": "NAME"}, read from the environment when a run starts.
RESOURCE_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"  # the resource's table name as is (dlt would not rename it)
BASE_URL_PATTERN = r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[^\s?#@]*)?$"  # no credentials, query or fragment
ENDPOINT_PATH_PATTERN = r"^[^\s?#]{1,1024}$"
# `{resources.<parent>.<field>}` in a child's path or params: dlt fills it from each parent item.
PARENT_REFERENCE = re.compile(r"\{resources\.([^.{}]+)\.([^{}]+)\}")


class EnvSecret(StrictModel):
    """A secret read from the environment (the container's env, `.env` locally) when a run starts."""

    model_config = ConfigDict(json_schema_extra={"x-message": SECRET_MESSAGE})

    env: Annotated[
        str,
        Field(
            pattern=SECRET_NAME_PATTERN,
            description="Environment variable holding the secret.",
            json_schema_extra={
                "allOf": [{"pattern": NOT_PLATFORM_SECRET_PATTERN, "x-message": PLATFORM_SECRET_MESSAGE}]
            },
        ),
    ]

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


class BearerAuth(StrictModel):
    type: Literal["bearer"]
    token: Secret


class ApiKeyAuth(StrictModel):
    type: Literal["api_key"]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] = Field(
        "Authorization", description="Header, query parameter or cookie name."
    )
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
    Field(discriminator="type"),
    tagged_union_check("auth", _AUTH_TAGS),
]

JsonPath = Annotated[str, Field(min_length=1, max_length=256)]
ParamName = Annotated[str, Field(min_length=1, max_length=128)]
Count = Annotated[int, Field(ge=0, le=1_000_000_000), BeforeValidator(whole_number)]


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
    limit: Annotated[int, Field(ge=1, le=100_000), BeforeValidator(whole_number)]
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
    SinglePagePaginator
    | HeaderLinkPaginator
    | JsonLinkPaginator
    | CursorPaginator
    | HeaderCursorPaginator
    | OffsetPaginator
    | PageNumberPaginator,
    Field(discriminator="type"),
    tagged_union_check("paginator", _PAGINATOR_TAGS),
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

    path: Annotated[
        str,
        Field(
            pattern=ENDPOINT_PATH_PATTERN,
            description="Relative to client.base_url; may use {resources.<parent>.<field>}.",
        ),
    ]
    method: Literal["GET", "POST"] = "GET"
    params: dict[ParamName, ParamValue] | None = None
    json_body: dict[str, object] | None = Field(None, alias="json", description="JSON body of a POST request.")
    data_selector: JsonPath | None = Field(None, description="JSONPath of the items in a response; default: detected.")
    paginator: RestPaginator | None = None
    incremental: RestIncremental | None = None


PrimaryKey = (
    Annotated[str, Field(min_length=1, max_length=128)]
    | Annotated[list[Annotated[str, Field(min_length=1, max_length=128)]], Field(min_length=1, max_length=8)]
)


# A resource's endpoint is a RestEndpoint; resource_defaults' holds everything but the path.
EndpointT = TypeVar("EndpointT", "RestEndpoint", "RestResourceEndpointDefaults")


class RestResourceDefaults(StrictModel, Generic[EndpointT]):
    endpoint: EndpointT | None = None
    primary_key: PrimaryKey | None = None
    write_disposition: WriteDisposition | None = None
    max_table_nesting: Annotated[int, Field(ge=0, le=10)] | None = None


class RestResourceEndpointDefaults(StrictModel):
    """What resource_defaults.endpoint may hold: everything but the path."""

    params: dict[ParamName, ParamValue] | None = None
    data_selector: JsonPath | None = None
    paginator: RestPaginator | None = None


class RestDefaults(RestResourceDefaults[RestResourceEndpointDefaults]):
    pass


class RestResource(RestResourceDefaults[RestEndpoint]):
    """One endpoint, one table (named after the resource)."""

    name: Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN, description="Resource name; also its table name.")]
    endpoint: RestEndpoint
    include_from_parent: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        None, max_length=20, description="Fields of the parent item copied into each child row (_<parent>_<field>)."
    )
    selected: bool = Field(True, description="false: fetched only to feed child resources, not loaded.")


class RestClient(StrictModel):
    base_url: Annotated[str, Field(pattern=BASE_URL_PATTERN, description="https://api.example.com/v1; no credentials.")]
    headers: (
        dict[Annotated[str, Field(pattern=HEADER_NAME_PATTERN)], Annotated[str, Field(max_length=1024)] | EnvSecret]
        | None
    ) = Field(None, description='Sent with every request; a value may be {"env": "NAME"}.')
    auth: RestAuth | None = None
    paginator: RestPaginator | None = None


class HttpLimits(StrictModel):
    """The platform's limits on top of dlt: a request budget per host and bounded retries."""

    requests_per_second: Annotated[float, Field(gt=0, le=1000)] | None = Field(
        None, strict=False, description="At most this many requests per second to one host."
    )
    requests_per_window: Annotated[int, Field(ge=1, le=1_000_000), BeforeValidator(whole_number)] | None = Field(
        None, description="At most this many requests to one host in any window_seconds (an API's quota)."
    )
    window_seconds: Annotated[int, Field(ge=1, le=86_400), BeforeValidator(whole_number)] = 60
    max_attempts: Annotated[int, Field(ge=1, le=10), BeforeValidator(whole_number)] = Field(
        5, description="Attempts per request on 429, 5xx and connection errors."
    )
    backoff_seconds: Annotated[float, Field(ge=0, le=60)] = Field(
        1.0, strict=False, description="Exponential back-off base (also after 'Retry-After: 0')."
    )
    max_retry_delay_seconds: Annotated[float, Field(ge=1, le=600)] = Field(
        60.0, strict=False, description="Longest wait between attempts, Retry-After included."
    )


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
    start: Annotated[dt.date, BeforeValidator(iso_date)] = Field(
        ..., strict=False, description="First window (first Dagster partition)."
    )
    lookback: Annotated[
        int,
        Field(ge=1, le=744, description="Windows a scheduled run reads, the one in progress included."),
        BeforeValidator(whole_number),
    ] = 1


class RestApiExtract(StrictModel):
    client: RestClient
    resources: list[RestResource] = Field(min_length=1, max_length=50)
    resource_defaults: RestDefaults | None = None
    http: HttpLimits = Field(default_factory=HttpLimits)
    partitions: RestPartitions | None = Field(
        None, description="Dagster time partitions over the incremental resources' cursors."
    )

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
                    problems.append(
                        f"{index}: resource '{resource.name}' refers to missing parent resource "
                        f"'{parent}' (resources: {', '.join(names)})"
                    )
            incremental = resource.endpoint.incremental
            if (
                parent_references(resource)
                and incremental is not None
                and (incremental.start_param is None or incremental.initial_value is None)
            ):
                problems.append(
                    f"{index}: child resource '{resource.name}' keeps a cursor per parent: its "
                    "incremental needs start_param and initial_value"
                )
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


def loaded_resources(definition: RestApiSourceDefinition) -> list[RestResource]:
    """Resources that become tables (a resource with selected=false only feeds its children)."""
    return [resource for resource in definition.extract.resources if resource.selected]
