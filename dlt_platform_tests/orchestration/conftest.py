"""Fixtures of the Dagster tests: a loopback KV API with sample data, a loopback stand-in for the Worker's
internal API, settings pointing at both, and source definitions (the sample file and a generated 100)."""

import datetime as dt
import json
import threading

import dagster as dg
import pytest
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from dlt_platform.config import load_sources_file, parse_sources_document
from dlt_platform.contract import RUN_STATUSES
from dlt_platform.duckdb_warehouse import read_connection
from dlt_platform.local.loopback import JSONHandler, LoopbackServer
from dlt_platform.local.sample_data import sample_namespaces
from dlt_platform.settings import PROJECT_ROOT, Settings
from dlt_platform.source_types.cloudflare_kv.local_api import KVApiServer, KVApiState

ACCOUNT_ID, API_TOKEN, INTERNAL_TOKEN = "acct-test", "cf-test-token", "internal-test-token"
NAMESPACE_IDS = {"ORDERS_KV": "ORDERS_KV_NAMESPACE_ID", "LEADS_KV": "LEADS_KV_NAMESPACE_ID",
                 "VENDOR_KV": "VENDOR_KV_NAMESPACE_ID"}
TODAY = dt.datetime.now(dt.timezone.utc).date()
SAMPLE_COUNTS = {"ORDERS_KV": 60, "LEADS_KV": 50, "VENDOR_KV": 12}
SAMPLE_CONFIG = PROJECT_ROOT / "config" / "sources.json"


@pytest.fixture(scope="session")
def kv_entries():
    return sample_namespaces(TODAY, orders=SAMPLE_COUNTS["ORDERS_KV"], leads=SAMPLE_COUNTS["LEADS_KV"],
                             vendors=SAMPLE_COUNTS["VENDOR_KV"])


@pytest.fixture(scope="session")
def kv_server(kv_entries):
    state = KVApiState(ACCOUNT_ID, API_TOKEN)
    for title, entries in kv_entries.items():
        namespace = state.add_namespace(NAMESPACE_IDS[title], title)
        for entry in entries:
            namespace.put(entry.key, entry.value, entry.metadata, entry.expiration)
    with KVApiServer(state) as server:
        yield server


@pytest.fixture
def settings(tmp_path, kv_server) -> Settings:
    return Settings(config_path=SAMPLE_CONFIG, data_dir=tmp_path / "data", destination_override="duckdb",
                    cloudflare_api_base_url=kv_server.base_url, cloudflare_account_id=ACCOUNT_ID,
                    cloudflare_api_token=API_TOKEN)


@pytest.fixture
def platform_env(monkeypatch, settings):
    """The same settings as environment variables, for code that calls Settings.from_env() (definitions.py)."""
    for name, value in {"DLT_PLATFORM_CONFIG": str(settings.config_path), "DLT_PLATFORM_DATA_DIR": str(settings.data_dir),
                        "DLT_PLATFORM_DESTINATION": "duckdb", "CLOUDFLARE_API_BASE_URL": settings.cloudflare_api_base_url,
                        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID, "CLOUDFLARE_API_TOKEN": API_TOKEN}.items():
        monkeypatch.setenv(name, value)
    for name in ("DLT_ORCHESTRATOR_URL", "DLT_INTERNAL_TOKEN", "DLT_PLATFORM_KV_TRANSPORT"):
        monkeypatch.delenv(name, raising=False)
    return settings


@pytest.fixture(scope="session")
def sample_definitions():
    return load_sources_file(SAMPLE_CONFIG)


def generated_sources_document(count: int) -> dict:
    """`count` definitions across 4 datasets and 10 namespaces: every third incremental (hourly every ninth),
    every other one snapshotting, every tenth disabled, a few manual-only."""
    sources = []
    for number in range(count):
        source = {
            "source_id": f"kv_source_{number:03d}", "source_type": "cloudflare_kv", "enabled": number % 10 != 9,
            "schedule": None if number % 17 == 16 else f"{number % 60} * * * *",
            "owners": ["team:data"] if number % 2 else [],
            "destination": {"type": "bigquery", "dataset": f"dataset_{number % 4}", "table": f"table_{number:03d}",
                            "write_disposition": "merge" if number % 3 == 0 else "replace"},
            "extract": {"namespace_id": f"NS_{number % 10}", "namespace_title": f"NAMESPACE_{number % 10}"},
            "staging": {"raw_snapshot": number % 2 == 0, "r2_prefix": f"cloudflare_kv/source_{number:03d}"},
        }
        if number % 3 == 0:
            source["extract"]["incremental"] = {"key_prefix": f"item{number}:{{date:%Y%m%d%H}}" if number % 9 == 0
                                                else f"item{number}:{{date:%Y%m%d}}",
                                                "step": "hour" if number % 9 == 0 else "day", "lookback": 2,
                                                "start": "2026-01-01"}
        sources.append(source)
    return {"sources": sources}


@pytest.fixture(scope="session")
def hundred_definitions():
    return parse_sources_document(generated_sources_document(100))


# The status changes the Worker's ledger allows, shared with its status machine (worker/src/ledger/status_machine.ts)
# through this file, which vitest checks against it: the stand-in takes its rule from here, never restates it.
LEDGER_ORDER = RUN_STATUSES  # the order a run moves through (dlt_platform/contract.py)
RUN_STATUS_CASES = PROJECT_ROOT / "config" / "run_status_cases.json"
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    status: frozenset(following) for status, following in json.loads(RUN_STATUS_CASES.read_text())["allowed"].items()}


class WorkerLedger:
    """The Worker's run ledger as far as the internal API shows it: the status changes config/run_status_cases.json
    allows, idempotent registration, every accepted request kept for assertions."""

    def __init__(self, sources_document: dict | None = None) -> None:
        self.sources_document = sources_document or {"sources": []}
        self.runs: dict[str, dict] = {}
        self.by_dagster_id: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict | None]] = []
        self.load_errors: list[dict] | None = None  # the code location's last report
        self.lock = threading.Lock()

    def add_run(self, run_id: str, source_id: str, trigger: str = "api") -> None:
        self.runs[run_id] = {"run_id": run_id, "source_id": source_id, "trigger": trigger, "status": "queued",
                             "history": ["queued"], "dagster_run_id": None, "rows_loaded": None, "tables": None,
                             "message": None, "alert": None, "partition": None}

    def register(self, body: dict) -> tuple[int, dict]:
        if body.get("dagster_run_id") in self.by_dagster_id:
            return 200, {"run_id": self.by_dagster_id[body["dagster_run_id"]], "created": False}
        run_id = f"run_{len(self.runs) + 1:04d}"
        self.add_run(run_id, body["source_id"], body["trigger"])
        self.runs[run_id].update(dagster_run_id=body["dagster_run_id"], partition=body.get("partition"))
        if body.get("status"):
            self.apply(run_id, {"status": body["status"]})
        self.by_dagster_id[body["dagster_run_id"]] = run_id
        return 200, {"run_id": run_id, "created": True}

    def apply(self, run_id: str, body: dict) -> tuple[int, dict]:
        run = self.runs.get(run_id)
        if run is None:
            return 404, {"error": {"code": "not_found", "message": f"unknown run {run_id}"}}
        status = body["status"]
        current = run["status"]
        forward = status in ALLOWED_TRANSITIONS[current]
        if forward:
            run["status"] = status
            run["history"].append(status)
            for field in ("dagster_run_id", "rows_loaded", "tables", "message", "alert"):
                if body.get(field) is not None:
                    run[field] = body[field]
        return 200, {"run_id": run_id, "status": run["status"], "applied": forward}


class _WorkerHandler(JSONHandler):
    server: "WorkerApiServer"
    _send = JSONHandler.send_body

    def _handle(self, method: str) -> None:
        ledger = self.server.ledger
        raw = self.read_body()
        body = json.loads(raw) if raw else None
        if self.headers.get("Authorization") != f"Bearer {INTERNAL_TOKEN}":
            return self._send(401, {"error": {"code": "unauthorized", "message": "bad token"}})
        with ledger.lock:
            ledger.requests.append((method, self.path, body))
            if method == "GET" and self.path == "/internal/sources":
                return self._send(200, ledger.sources_document)
            if method == "POST" and self.path == "/internal/runs":
                return self._send(*ledger.register(body))
            if method == "POST" and self.path == "/internal/sources/load-errors":
                ledger.load_errors = body["errors"]
                return self._send(200, {"recorded": len(body["errors"])})
            parts = self.path.strip("/").split("/")
            if method == "POST" and len(parts) == 4 and parts[:2] == ["internal", "runs"] and parts[3] == "status":
                return self._send(*ledger.apply(parts[2], body))
        self._send(404, {"error": {"code": "not_found", "message": self.path}})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


class WorkerApiServer(LoopbackServer):
    """A real HTTP server on loopback; stop() and a new server on the same port simulate the Worker being down."""

    def __init__(self, ledger: WorkerLedger, port: int = 0) -> None:
        super().__init__(_WorkerHandler, ledger, port)
        self.start()

    @property
    def ledger(self) -> WorkerLedger:
        return self.owner

    @property
    def base_url(self) -> str:
        return self.url


@pytest.fixture
def worker_api():
    servers = [WorkerApiServer(WorkerLedger())]
    yield servers[0]
    for server in servers:
        try:
            server.stop()
        except Exception:
            pass


def read_table(settings: Settings, dataset: str, table: str, columns: str = "count(*)") -> list[tuple]:
    with read_connection(settings.duckdb_path) as connection:
        return connection.execute(f"select {columns} from {dataset}.{table}").fetchall()


@pytest.fixture
def instance(tmp_path, platform_env):
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides={
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
        # Executes the launched run synchronously in this process (the daemon would start a run worker).
        "run_launcher": {"module": "dagster._core.launcher.sync_in_memory_run_launcher",
                         "class": "SyncInMemoryRunLauncher"},
    }) as instance:
        yield instance


@pytest.fixture
def workspace(instance):
    origin = LoadableTargetOrigin(module_name="dlt_platform.definitions", attribute="defs")
    with in_process_test_workspace(instance, origin) as workspace:
        yield workspace
