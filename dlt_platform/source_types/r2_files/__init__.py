"""r2_files: files in an R2 bucket (or any S3-compatible bucket behind the platform's R2 endpoint), one table per
glob or per Cloudflare Logpush job, read by dlt's filesystem source and readers (README.md in this folder)."""

from __future__ import annotations

from dlt_platform.source_types.base import SourceType, asset_name
from dlt_platform.source_types.r2_files.definition import (
    R2FilesSourceDefinition,
    table_name,
)


class R2Files(SourceType):
    name = "r2_files"
    model = R2FilesSourceDefinition
    system_kind = "r2"
    cli_module = "dlt_platform.source_types.r2_files.cli"

    def table_names(self, definition: R2FilesSourceDefinition) -> list[str]:
        return [table_name(table) for table in definition.extract.tables]

    def check_request(self, definition: R2FilesSourceDefinition, request) -> None:
        from dlt_platform.source_types.r2_files.source import checked_files_request

        checked_files_request(definition, request)

    def describe(self, definition: R2FilesSourceDefinition, settings) -> dict[str, str]:
        from dlt_platform.source_types.r2_files.source import describe_location

        return {"reads": f"r2://{definition.extract.bucket}", "transport": describe_location(definition, settings)}

    def dlt_source(self, definition: R2FilesSourceDefinition, settings, request):
        from dlt_platform.source_types.r2_files.source import r2_files_source

        return r2_files_source(definition, settings, request)

    def source_system_key(self, definition: R2FilesSourceDefinition):
        # The bucket: sources reading one bucket share its node.
        import dagster as dg

        return dg.AssetKey(["r2", asset_name(definition.extract.bucket)])

    def lineage_specs(self, definition: R2FilesSourceDefinition):
        from dlt_platform.source_types.r2_files.assets import lineage_specs

        return lineage_specs(definition)

    def build_asset(self, definition: R2FilesSourceDefinition, settings, version):
        from dlt_platform.source_types.r2_files.assets import build_r2_files_asset

        return build_r2_files_asset(definition, settings, version)


R2_FILES = R2Files()
