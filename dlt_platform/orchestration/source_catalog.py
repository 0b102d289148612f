"""Where the code location's source definitions come from, and how every process sees the same ones.

The sources file (DLT_PLATFORM_CONFIG, default config/sources.json) by default; the Worker's
`GET /internal/sources` when DLT_ORCHESTRATOR_URL and DLT_INTERNAL_TOKEN are set. The last document fetched
from the Worker is kept on disk, so the code location still loads while the Worker is briefly unreachable.

A definition Python cannot use (an older Worker accepted it, or D1 was edited by hand) does not stop the
others: it becomes a `DefinitionProblem` of the catalog, shown in Dagster and reported to the Worker.

The definitions read when the code location initializes are serialized into Dagster's reconstruction
metadata: each run worker rebuilds the location from the metadata instead of reading again, so a run executes
exactly the definition its launcher saw.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dlt_platform.config import (
    DefinitionProblem,
    SourceDefinition,
    parse_sources_document,
    read_sources_document,
    sort_sources_document,
)
from dlt_platform.orchestration.worker_client import (
    WorkerClient,
    WorkerRejected,
    WorkerUnavailable,
    worker_client_for,
)
from dlt_platform.settings import Settings

log = logging.getLogger(__name__)

RECONSTRUCTION_KEY = "dlt_platform/sources"


class CatalogUnavailable(RuntimeError):
    """The Worker could not hand over its definitions and no earlier copy is cached."""


@dataclass(frozen=True)
class SourceCatalog:
    definitions: list[SourceDefinition]
    origin: str  # "file:<path>", "worker:<url>" or "worker-cache:<path>": shown in the UI, useful in incidents
    # The Worker's version of each source (D1 `sources.version`); Dagster shows it and the Worker waits for it.
    versions: dict[str, int] = field(default_factory=dict)
    problems: list[DefinitionProblem] = field(default_factory=list)

    @property
    def from_worker(self) -> bool:
        return self.origin.startswith("worker")

    def to_json(self) -> str:
        return json.dumps(
            {
                "origin": self.origin,
                "versions": self.versions,
                "problems": [asdict(problem) for problem in self.problems],
                "sources": [d.model_dump(mode="json") for d in self.definitions],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, only_source: str | None = None) -> SourceCatalog:
        """The catalog `to_json` wrote; with `only_source` (a run container's source) just that source, when the
        catalog holds it: its run worker builds one source's definitions, not every source's (about 20 ms of CPU
        each; docs/dagster.md, "Run containers"). A run without one source keeps them all."""
        document = json.loads(text)
        chosen = [source for source in document["sources"] if source.get("source_id") == only_source]
        if chosen:
            document["sources"], document["problems"] = chosen, []
        return cls(
            parse_sources_document(document),
            document.get("origin", "reconstruction"),
            document.get("versions") or {},
            [DefinitionProblem(**problem) for problem in document.get("problems") or []],
        )

    @classmethod
    def from_document(cls, document: object, origin: str) -> SourceCatalog:
        """Every usable definition of a sources document; the others become problems."""
        definitions, problems = sort_sources_document(document)
        raw_versions = document.get("versions") if isinstance(document, dict) else None
        versions = {
            key: value
            for key, value in (raw_versions or {}).items()
            if isinstance(key, str) and isinstance(value, int) and not isinstance(value, bool)
        }
        for problem in problems:
            log.error(
                "source definition %s cannot be loaded: %s", problem.source_id or f"#{problem.index}", problem.message
            )
        return cls(definitions, origin, versions, problems)


def worker_cache_path(settings: Settings) -> Path:
    return settings.data_dir / "dagster" / "worker_sources.json"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def fetch_from_worker(settings: Settings, client: WorkerClient | None = None) -> SourceCatalog:
    """The Worker's definitions; on WorkerUnavailable the cached copy of the last good fetch."""
    cache = worker_cache_path(settings)
    own_client = client is None
    client = client or worker_client_for(settings)
    try:
        document = client.get_sources()
    except (WorkerUnavailable, WorkerRejected) as error:
        if not cache.is_file():
            raise CatalogUnavailable(f"Worker sources unavailable ({error}) and no cached copy at {cache}") from None
        log.warning("Worker sources unavailable (%s); using the cached copy %s", error, cache)
        return SourceCatalog.from_document(json.loads(cache.read_text(encoding="utf-8")), f"worker-cache:{cache}")
    finally:
        if own_client:
            client.close()
    # Read before caching: a document that is not a sources document must never replace the last good one.
    catalog = SourceCatalog.from_document(document, f"worker:{settings.orchestrator_url}")
    _write_atomically(cache, json.dumps(document, sort_keys=True))
    return catalog


def read_catalog(settings: Settings) -> SourceCatalog:
    """Definitions as the code location reads them on initialization."""
    if settings.orchestrator_url and settings.internal_token:
        return fetch_from_worker(settings)
    return SourceCatalog.from_document(read_sources_document(settings.config_path), f"file:{settings.config_path}")


def report_problems(
    settings: Settings, problems: list[DefinitionProblem], versions: dict[str, int], client: WorkerClient | None = None
) -> bool:
    """Tells the Worker which sources Dagster could not load (the whole current set, so fixed ones clear);
    best effort: the code location loads whether or not the Worker hears about it."""
    errors = [
        {"source_id": problem.source_id, "version": versions.get(problem.source_id), "message": problem.message}
        for problem in problems
        if problem.source_id
    ]
    own_client = client is None
    client = client or worker_client_for(settings, timeout_seconds=5.0)
    try:
        client.report_load_errors(errors)
        return True
    except (WorkerUnavailable, WorkerRejected) as error:
        log.warning("could not report %d source load error(s) to the Worker: %s", len(errors), error)
        return False
    finally:
        if own_client:
            client.close()
