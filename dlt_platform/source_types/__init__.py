"""The source-type registry: every type the platform loads, one package each (`source_types/<type>/`: its
definition model, dlt source, Dagster assets, local stand-in and README), each exposing one `SourceType` object
(base.py). docs/source-types.md tells how to add one."""

from __future__ import annotations

from dlt_platform.source_types.base import SourceType
from dlt_platform.source_types.cloudflare_kv import CLOUDFLARE_KV
from dlt_platform.source_types.d1 import D1_DATABASE
from dlt_platform.source_types.r2_files import R2_FILES
from dlt_platform.source_types.rest_api import REST_API
from dlt_platform.source_types.webhook import WEBHOOK

# One line per type: adding a type adds a line here.
SOURCE_TYPES: dict[str, SourceType] = {
    source_type.name: source_type
    for source_type in (
        CLOUDFLARE_KV,
        WEBHOOK,
        REST_API,
        D1_DATABASE,
        R2_FILES,
    )
}


def source_type_of(definition) -> SourceType:
    """The type object of a parsed definition (whose `source_type` the registry always knows)."""
    return SOURCE_TYPES[definition.source_type]
