"""What a source type is: one object per type (`source_types/<type>/__init__.py`), registered in
`source_types/__init__.py`. Everything else (the definitions file, the JSON Schema, loads, the Dagster code
location, the CLI) asks the registry instead of branching on `source_type`.

A type answers three kinds of question, each group used by a different layer:
- its definition: the model, the tables it loads, its time windows, the rules of a run request and the write
  disposition a run gets. Answered without dlt or Dagster (config.py and load_request.py use them).
- a load (loads.py): the dlt source of a request, what to do after a load, how a failure and a raw snapshot are
  reported.
- Dagster (orchestration/code_location.py): the lineage nodes upstream of its tables, its assets, and the sensors
  that start its runs; `build_defs` turns a type's definitions into a `dg.Definitions`.

Heavy modules (dlt, Dagster) are imported by the methods that use them, so reading a definition stays light and the
package layers stay acyclic (a type's dlt source imports config.py, which imports this registry).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, ClassVar

from dlt_platform.definition_base import SourceBase, WriteDisposition

if TYPE_CHECKING:
    import dagster as dg

    from dlt_platform.load_request import LoadRequest
    from dlt_platform.settings import Settings


# The steps a source's time windows (`time_windows`) are cut by; windows start at a step's UTC boundary.
WINDOW_STEPS = {"day": dt.timedelta(days=1), "hour": dt.timedelta(hours=1)}


def window_start(moment: dt.datetime, step: str) -> dt.datetime:
    """The start of the `step` window holding `moment` (UTC)."""
    moment = moment.astimezone(dt.UTC)
    if step == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


class SourceError(RuntimeError):
    """What a source reports in one line, without a traceback: a secret not set, a table D1 does not have, a token
    the API refused. The CLI prints it as it is; a run fails with it as its message."""


def asset_name(text: str) -> str:
    """A Dagster asset key part from any text (hosts, prefixes, titles)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


class SourceType:
    """The defaults are those of a type that loads one table (`destination.table`) read by the platform."""

    name: ClassVar[str]  # the definitions' `source_type`
    model: ClassVar[type[SourceBase]]  # its definition model: validation here and, through the schema, in the Worker
    system_kind: ClassVar[str]  # the Dagster kind of the system it reads, e.g. "cloudflare"
    # The module that registers the type's own CLI commands on `dlt_platform.cli.app.app` (e.g. `dlt-platform d1`),
    # imported by the CLI only: loads and Dagster never import it.
    cli_module: ClassVar[str | None] = None

    # --- the definition -------------------------------------------------------------------------------------------

    def table_names(self, definition: Any) -> list[str]:
        """The tables a source loads (their child tables `x__y` go with them)."""
        return [definition.destination.table]

    def time_windows(self, definition: Any) -> Any | None:
        """What the source's Dagster partitions are cut by: an object with `step` ("day"/"hour"), `start` (a date)
        and `lookback` (windows a scheduled run reads); None for a source without time partitions."""
        return None

    def reads_part_of_source(self, definition: Any, request: LoadRequest) -> bool:
        """True when a run reads only part of what the source holds (a limit, explicit keys, a time window, the
        replay of a snapshot that is itself of part of the source): such a run never replaces a table."""
        from dlt_platform.snapshots import is_complete_snapshot

        if request.full_refresh:
            return False
        replays_part = request.from_snapshot is not None and not is_complete_snapshot(request.from_snapshot)
        return bool(request.limit is not None or request.keys or replays_part or request.window)

    def write_disposition(self, definition: Any, request: LoadRequest) -> WriteDisposition:
        """How a run writes the source's table: `replace` only for a run that reads the whole source (a partial
        run merges instead); `merge` and `append` as configured."""
        configured = definition.destination.write_disposition
        if configured == "replace" and self.reads_part_of_source(definition, request):
            return "merge"
        return configured

    def check_request(self, definition: Any, request: LoadRequest) -> None:
        """Raise ValueError naming the field when the type cannot run this request (load_request.checked_request
        checks the rules every type shares first)."""

    def describe(self, definition: Any, settings: Settings) -> dict[str, str]:
        """What `dlt-platform sources` shows in its reads/transport columns."""
        raise NotImplementedError

    # --- a load (dlt) ---------------------------------------------------------------------------------------------

    def dlt_source(self, definition: Any, settings: Settings, request: LoadRequest) -> Any:
        """The dlt source of one (checked) request; its schema is named after the source id."""
        raise NotImplementedError

    def after_load(self, definition: Any, settings: Settings, pipeline: Any, load_ids: list[str], run_id: str) -> dict:
        """What the source does once its load packages are in the warehouse, and only then; returns metadata."""
        return {}

    def failed_run(self, error: BaseException, definition: Any, source: Any) -> BaseException:
        """What a run that raised reports (e.g. one line instead of dlt's step failure)."""
        return error

    def published_snapshot(self, pipeline: Any, definition: Any, source: Any, load_id: str | None) -> str | None:
        """The raw snapshot a run that loaded kept (an object URL), if any."""
        return None

    # --- Dagster --------------------------------------------------------------------------------------------------

    def source_system_key(self, definition: Any) -> dg.AssetKey:
        """The external node of the system a source reads; sources reading one system share it."""
        raise NotImplementedError

    def lineage_specs(self, definition: Any) -> list[dg.AssetSpec]:
        """The external nodes upstream of the source's tables, system first (shared nodes repeat: deduplicated by
        key by the caller)."""
        raise NotImplementedError

    def upstream_key(self, definition: Any) -> dg.AssetKey:
        """What the source's table assets depend on: the last of its lineage nodes."""
        return self.lineage_specs(definition)[-1].key

    def partitions(self, definition: Any) -> dg.TimeWindowPartitionsDefinition | None:
        """One partition per time window (end_offset=1 keeps the window in progress, which lookbacks read)."""
        import dagster as dg

        windows = self.time_windows(definition)
        if windows is None:
            return None
        if windows.step == "hour":
            return dg.HourlyPartitionsDefinition(
                start_date=f"{windows.start:%Y-%m-%d}-00:00", end_offset=1, timezone="UTC"
            )
        return dg.DailyPartitionsDefinition(start_date=f"{windows.start:%Y-%m-%d}", end_offset=1, timezone="UTC")

    def build_asset(self, definition: Any, settings: Settings, version: int | None) -> dg.AssetsDefinition:
        """The dlt assets of one source; the op is named after the source (the Worker's run config addresses
        ops.<source_id>)."""
        raise NotImplementedError

    def sensors(self, definition: Any, job: Any, settings: Settings) -> list[dg.SensorDefinition]:
        """Sensors that start the source's runs, besides its schedule."""
        return []

    def build_defs(
        self, definitions: list[Any], settings: Settings, versions: dict[str, int]
    ) -> tuple[dg.Definitions, list[tuple[Any, str]]]:
        """The Dagster definitions of this type's sources, and (definition, why) for each that could not be built:
        one source's failure leaves the others loadable."""
        from dlt_platform.orchestration.source_defs import build_source_defs

        return build_source_defs(self, definitions, settings, versions)
