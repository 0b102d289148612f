"""rest_api: an HTTP API read through dlt's rest_api source, one table per resource, all loaded in one run
(README.md in this folder)."""

from __future__ import annotations

from urllib.parse import urlsplit

from dlt_platform.source_types.base import SourceType, asset_name
from dlt_platform.source_types.rest_api.definition import RestApiSourceDefinition, loaded_resources


class RestApi(SourceType):
    name = "rest_api"
    model = RestApiSourceDefinition
    system_kind = "api"

    def table_names(self, definition: RestApiSourceDefinition) -> list[str]:
        return [resource.name for resource in loaded_resources(definition)]

    def time_windows(self, definition: RestApiSourceDefinition):
        return definition.extract.partitions

    def check_request(self, definition: RestApiSourceDefinition, request) -> None:
        from dlt_platform.source_types.rest_api.source import checked_rest_request

        checked_rest_request(definition, request)

    def describe(self, definition: RestApiSourceDefinition, settings) -> dict[str, str]:
        return {"reads": urlsplit(definition.extract.client.base_url).netloc, "transport": "http"}

    def dlt_source(self, definition: RestApiSourceDefinition, settings, request):
        from dlt_platform.source_types.rest_api.source import rest_api_source

        return rest_api_source(definition, settings, request)

    def failed_run(self, error, definition: RestApiSourceDefinition, source):
        """The run's snapshot is discarded; a failure of the API's is one line."""
        from dlt_platform.source_types.rest_api.errors import described_failure
        from dlt_platform.source_types.rest_api.source import run_snapshot, secret_query_params

        snapshot = run_snapshot(source)
        if snapshot is not None:
            snapshot.discard()
        return described_failure(error, definition, secret_query_params(definition)) or error

    def published_snapshot(self, pipeline, definition: RestApiSourceDefinition, source, load_id):
        """The run's snapshot (all its resources in one file) is published once the load succeeded."""
        from dlt_platform.source_types.rest_api.source import run_snapshot

        snapshot = run_snapshot(source)
        if snapshot is None:
            return None
        if not load_id:  # nothing was loaded (no new package): nothing to keep
            snapshot.discard()
            return None
        return snapshot.publish(load_id)

    def source_system_key(self, definition: RestApiSourceDefinition):
        # The API's host: sources reading one API share its node.
        import dagster as dg

        return dg.AssetKey([self.name, asset_name(urlsplit(definition.extract.client.base_url).netloc)])

    def lineage_specs(self, definition: RestApiSourceDefinition):
        from dlt_platform.source_types.rest_api.assets import lineage_specs

        return lineage_specs(definition)

    def build_asset(self, definition: RestApiSourceDefinition, settings, version):
        from dlt_platform.source_types.rest_api.assets import build_rest_api_asset

        return build_rest_api_asset(definition, settings, version)


REST_API = RestApi()
