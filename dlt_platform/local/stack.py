"""The offline local run: sample KV data served on loopback, every enabled source loaded into DuckDB.

This is what `dlt-platform up` runs on one machine with no cloud credentials: the sample namespaces are served
by the loopback KV API (dlt_platform.local.kv_api_server) and read through the production REST transport, and
the warehouse is the DuckDB file under the data folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import time
from collections.abc import Callable

from dlt_platform.config import SourceDefinition
from dlt_platform.loads import LoadResult
from dlt_platform.local.kv_api_server import KVApiServer, KVApiState
from dlt_platform.local.sample_data import sample_namespaces
from dlt_platform.run_request import RunRequest
from dlt_platform.settings import Settings

LOCAL_ACCOUNT_ID = "local0000000000000000000000000000"


def seed_local_kv(definitions: list[SourceDefinition], today: dt.date) -> KVApiState:
    """A KV API state holding the sample data of every namespace the definitions name."""
    state = KVApiState(LOCAL_ACCOUNT_ID, secrets.token_urlsafe(24))
    samples = sample_namespaces(today)
    for definition in definitions:
        extract = definition.extract
        if extract.namespace_id in state.namespaces:
            continue
        namespace = state.add_namespace(extract.namespace_id, extract.namespace_title)
        for entry in samples.get(extract.namespace_title, []):
            namespace.put(entry.key, entry.value, entry.metadata, entry.expiration)
    return state


def run_local(settings: Settings, load: Callable[[SourceDefinition, Settings, RunRequest], LoadResult]
              ) -> list[tuple[SourceDefinition, LoadResult, float]]:
    """Load every enabled source from the local sample KV into DuckDB; returns (definition, result, seconds)."""
    definitions = settings.load_sources()
    state = seed_local_kv(definitions, dt.datetime.now(dt.timezone.utc).date())
    results = []
    with KVApiServer(state) as server:
        local = dataclasses.replace(
            settings,
            destination_override="duckdb",
            kv_transport_override="rest",
            cloudflare_api_base_url=server.base_url,
            cloudflare_account_id=state.account_id,
            cloudflare_api_token=state.token,
        )
        for definition in definitions:
            if not definition.enabled:
                continue
            started = time.perf_counter()
            result = load(definition, local, RunRequest())
            results.append((definition, result, time.perf_counter() - started))
    return results
