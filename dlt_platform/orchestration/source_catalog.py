"""Where the code location's source definitions come from, and how every process sees the same ones.

The sources file (DLT_PLATFORM_CONFIG, default config/sources.json) by default; the Worker's
`GET /internal/sources` when DLT_ORCHESTRATOR_URL and DLT_INTERNAL_TOKEN are set. The last document fetched
from the Worker is kept on disk, so the code location still loads while the Worker is briefly unreachable.

The definitions read when the code location initializes are serialized into Dagster's reconstruction
metadata: the daemon and the webserver share that code server, and each run worker rebuilds the location from
the metadata instead of reading again, so a run executes exactly the definition its launcher saw.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from dlt_platform.config import DefinitionError, SourceDefinition, parse_sources_document
from dlt_platform.orchestration.worker_client import WorkerClient, WorkerRejected, WorkerUnavailable
from dlt_platform.settings import Settings

log = logging.getLogger(__name__)

RECONSTRUCTION_KEY = "dlt_platform/sources"


@dataclass(frozen=True)
class SourceCatalog:
    definitions: list[SourceDefinition]
    origin: str  # "file:<path>", "worker:<url>" or "worker-cache:<path>": shown in the UI, useful in incidents

    def to_json(self) -> str:
        return json.dumps({"origin": self.origin,
                           "sources": [d.model_dump(mode="json") for d in self.definitions]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SourceCatalog:
        document = json.loads(text)
        return cls(parse_sources_document(document), document.get("origin", "reconstruction"))


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
    client = client or WorkerClient(settings.orchestrator_url, settings.internal_token or "")
    try:
        document = client.get_sources()
    except (WorkerUnavailable, WorkerRejected) as error:
        if not cache.is_file():
            raise DefinitionError(f"Worker sources unavailable ({error}) and no cached copy at {cache}") from None
        log.warning("Worker sources unavailable (%s); using the cached copy %s", error, cache)
        return SourceCatalog(parse_sources_document(json.loads(cache.read_text(encoding="utf-8"))),
                             f"worker-cache:{cache}")
    finally:
        if own_client:
            client.close()
    # Validate before caching: a bad document must never replace the last good one.
    definitions = parse_sources_document(document)
    _write_atomically(cache, json.dumps(document, sort_keys=True))
    return SourceCatalog(definitions, f"worker:{settings.orchestrator_url}")


def read_catalog(settings: Settings) -> SourceCatalog:
    """Definitions as the code location reads them on initialization."""
    if settings.orchestrator_url and settings.internal_token:
        return fetch_from_worker(settings)
    return SourceCatalog(settings.load_sources(), f"file:{settings.config_path}")
