"""The Dagster code location `dlt_platform` (workspace.yaml: module dlt_platform.definitions, attribute defs).

On initialization (code server for the webserver and daemon) the source definitions are read from the sources
file or the Worker and stored in the reconstruction metadata; run workers rebuild the same assets from that
copy instead of reading again, in a run container only its run's source (contract.RUN_SOURCE_ENV). Definitions
that cannot be built are shown in Dagster and, on initialization, reported to the Worker (`GET /sources/:id` and
the admin page show them).
"""

import warnings

import dagster as dg

# No public API: @dg.definitions passes only a ComponentLoadContext, in dg projects (dagster-io/dagster#32906).
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType

from dlt_platform.orchestration.code_location import build_code_location
from dlt_platform.orchestration.source_catalog import RECONSTRUCTION_KEY, SourceCatalog, read_catalog, report_problems
from dlt_platform.settings import Settings


def initializing() -> bool:
    return DefinitionsLoadContext.get().load_type != DefinitionsLoadType.RECONSTRUCTION


def load_catalog(settings: Settings) -> SourceCatalog:
    context = DefinitionsLoadContext.get()
    if context.load_type == DefinitionsLoadType.RECONSTRUCTION:
        stored = context.reconstruction_metadata.get(RECONSTRUCTION_KEY)
        if stored is not None:
            return SourceCatalog.from_json(stored, only_source=settings.run_source_id)
    return read_catalog(settings)


# Dagster loads `defs` twice in one process when it starts a code server or validates (once to find the
# module's targets, once to load them): the same settings and definitions give the same code location, so the
# second load reuses the first instead of building every source again.
_last_built: tuple[tuple[Settings, str], dg.Definitions] | None = None


@dg.definitions
def defs() -> dg.Definitions:
    global _last_built
    settings = Settings.from_env()
    catalog = load_catalog(settings)
    key = (settings, catalog.to_json())
    if _last_built is not None and _last_built[0] == key:
        return _last_built[1]
    location, problems = build_code_location(catalog.definitions, settings, catalog.problems, catalog.versions)
    if catalog.from_worker and initializing():
        report_problems(settings, problems, catalog.versions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # reconstruction metadata is preview in 1.13
        built = location.with_reconstruction_metadata({RECONSTRUCTION_KEY: key[1]})
    _last_built = (key, built)
    return built
