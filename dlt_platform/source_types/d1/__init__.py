"""d1: tables of a Cloudflare D1 database (or named SELECT queries over it), one warehouse table each, read in
keyset pages over Cloudflare's REST API or the Worker's D1 binding (README.md in this folder)."""

from __future__ import annotations

from dlt_platform.source_types.base import SourceType, asset_name
from dlt_platform.source_types.d1.definition import (
    D1SourceDefinition,
    loaded_tables,
    warehouse_name,
)


class D1(SourceType):
    name = "d1"
    model = D1SourceDefinition
    system_kind = "cloudflare"
    cli_module = "dlt_platform.source_types.d1.cli"

    def table_names(self, definition: D1SourceDefinition) -> list[str]:
        return [warehouse_name(item) for item in loaded_tables(definition)]

    def reads_part_of_source(self, definition: D1SourceDefinition, request) -> bool:
        return bool(request.limit is not None) and not request.full_refresh

    def check_request(self, definition: D1SourceDefinition, request) -> None:
        if request.keys:
            raise ValueError("keys: a d1 source loads tables, not keys (use limit, or full_refresh)")
        if request.from_snapshot:
            raise ValueError("from_snapshot: a d1 source keeps no raw snapshots")
        if request.window is not None:
            raise ValueError("window: a d1 source has no time partitions")

    def describe(self, definition: D1SourceDefinition, settings) -> dict[str, str]:
        return {"reads": f"d1/{definition.extract.database_name}", "transport": d1_transport(definition, settings)}

    def dlt_source(self, definition: D1SourceDefinition, settings, request):
        from dlt_platform.source_types.d1.source import d1_source

        return d1_source(definition, settings, request)

    def failed_run(self, error, definition: D1SourceDefinition, source):
        from dlt_platform.source_types.d1.client import D1Error

        cause = error
        while cause is not None and not isinstance(cause, D1Error):
            cause = cause.__cause__ or cause.__context__
        return cause if cause is not None else error

    def source_system_key(self, definition: D1SourceDefinition):
        import dagster as dg

        return dg.AssetKey([self.name, asset_name(definition.extract.database_name)])

    def lineage_specs(self, definition: D1SourceDefinition):
        from dlt_platform.source_types.d1.assets import lineage_specs

        return lineage_specs(definition)

    def build_asset(self, definition: D1SourceDefinition, settings, version):
        from dlt_platform.source_types.d1.assets import build_d1_asset

        return build_d1_asset(definition, settings, version)


def d1_transport(definition: D1SourceDefinition, settings) -> str:
    """The definition's own transport (no environment override: a source with queries runs over REST only)."""
    return definition.extract.transport


D1_DATABASE = D1()
