"""A cloudflare_kv source in Dagster: one table asset (orchestration/assets.py builds it) and its lineage.

cloudflare_kv/<NAMESPACE>  ->  raw_staging/<r2_prefix...>  ->  <dataset>/<table>
(source system, external)      (raw snapshot, when kept)       (warehouse table: the dlt asset)
"""

from __future__ import annotations

import dagster as dg

from dlt_platform.orchestration.assets import (
    SOURCE_SYSTEM_GROUP,
    PlatformTranslator,
    base_metadata,
    build_source_asset,
    raw_snapshot_spec,
)
from dlt_platform.settings import Settings
from dlt_platform.source_types.cloudflare_kv.definition import KVSourceDefinition


def kv_metadata(definition: KVSourceDefinition) -> dict:
    extract, staging = definition.extract, definition.staging
    metadata: dict = {
        **base_metadata(definition),
        "namespace_id": extract.namespace_id,
        "namespace_title": extract.namespace_title,
        "kv_prefix": extract.prefix or "",
        "transport": extract.transport,
        "snapshot_prefix": staging.r2_prefix if staging.raw_snapshot else "none",
    }
    if extract.incremental is not None and extract.incremental.enabled:
        metadata["incremental_key_prefix"] = extract.incremental.key_prefix
        metadata["incremental_lookback"] = f"{extract.incremental.lookback} {extract.incremental.step}(s)"
    return metadata


def lineage_specs(definition: KVSourceDefinition) -> list[dg.AssetSpec]:
    from dlt_platform.source_types.cloudflare_kv import CLOUDFLARE_KV

    system = CLOUDFLARE_KV.source_system_key(definition)
    specs = [
        dg.AssetSpec(
            system,
            group_name=SOURCE_SYSTEM_GROUP,
            description=f"Cloudflare Workers KV namespace {definition.extract.namespace_title}",
            kinds={CLOUDFLARE_KV.system_kind},
            metadata={
                "namespace_id": definition.extract.namespace_id,
                "namespace_title": definition.extract.namespace_title,
            },
        )
    ]
    raw = raw_snapshot_spec(definition, system)
    return specs if raw is None else [*specs, raw]


def build_kv_asset(
    definition: KVSourceDefinition, settings: Settings, version: int | None = None
) -> dg.AssetsDefinition:
    translator = PlatformTranslator(
        definition, settings.destination_type(definition), version, metadata=kv_metadata(definition)
    )
    return build_source_asset(definition, settings, translator)
