"""cloudflare_kv: a Workers KV namespace, listed (or read key by key) and loaded one row per key, over Cloudflare's
REST API or the Worker's KV binding (README.md in this folder)."""

from __future__ import annotations

from dlt_platform.source_types.base import SourceType
from dlt_platform.source_types.cloudflare_kv.definition import KVSourceDefinition


class CloudflareKV(SourceType):
    name = "cloudflare_kv"
    model = KVSourceDefinition
    system_kind = "cloudflare"

    def time_windows(self, definition: KVSourceDefinition):
        incremental = definition.extract.incremental
        return incremental if incremental is not None and incremental.enabled else None

    def reads_part_of_source(self, definition: KVSourceDefinition, request) -> bool:
        # An incremental source's normal run reads its lookback windows only; a replay reads what its snapshot holds.
        return super().reads_part_of_source(definition, request) or (
            not request.full_refresh and not request.from_snapshot and self.time_windows(definition) is not None
        )

    def describe(self, definition: KVSourceDefinition, settings) -> dict[str, str]:
        return {"reads": definition.extract.namespace_title, "transport": settings.kv_transport(definition)}

    def dlt_source(self, definition: KVSourceDefinition, settings, request):
        from dlt_platform.source_types.cloudflare_kv.source import cloudflare_kv

        return cloudflare_kv.clone(name=definition.source_id)(definition, settings, request)

    def published_snapshot(self, pipeline, definition: KVSourceDefinition, source, load_id):
        # KV publishes its snapshot while extracting and records it in the resource's state.
        state = pipeline.state.get("sources", {}).get(definition.source_id, {})
        return state.get("resources", {}).get(definition.destination.table, {}).get("last_snapshot")

    def source_system_key(self, definition: KVSourceDefinition):
        import dagster as dg

        return dg.AssetKey([self.name, definition.extract.namespace_title])

    def lineage_specs(self, definition: KVSourceDefinition):
        from dlt_platform.source_types.cloudflare_kv.assets import lineage_specs

        return lineage_specs(definition)

    def build_asset(self, definition: KVSourceDefinition, settings, version):
        from dlt_platform.source_types.cloudflare_kv.assets import build_kv_asset

        return build_kv_asset(definition, settings, version)


CLOUDFLARE_KV = CloudflareKV()
