"""The whole platform on one machine, offline: wrangler dev (Worker, local D1, queues, R2, KV) + Dagster.

`dlt-platform up` and the end-to-end tests start it the same way:
1. tokens are generated once into `.local/worker.env` (git-ignored) and reused;
2. the local D1 is migrated and the local KV namespaces are seeded with sample data (once a day: lead keys
   are dated relative to today); the sample app the d1 sample source reads (users and orders,
   dlt_platform/source_types/d1/local_api.py) is created in the local D1 beside the ledger;
3. `wrangler dev` serves the Worker (a running one on the port is reused);
4. the sample definitions are synced into D1 through the operator API;
   the sample REST API (dlt_platform/source_types/rest_api/local_api.py) serves the rest_api sample source on port 8790;
   its credentials reach it and Dagster through the environment, as a real API's secrets would;
5. Dagster (code server, webserver + daemon) starts through the container's entrypoint, `dlt-platform serve`,
   reading its definitions from the Worker, its KV pages through the Worker, and loading the local DuckDB file, or with
   `warehouse="bigquery"` the BigQuery emulator, started first (the production destination, offline);
6. every run executes in a process of its own, started by the local run-container host
   (dlt_platform/local/run_container_host.py) through the Worker, as a run container is in production; the
   Worker gives each run its environment, with the sample API's secrets only for the source that names them.
The r2_files sample source reads the folder <data dir>/r2/edge-logs, the local stand-in of an R2 bucket, seeded
with today's Logpush batches (dlt_platform/source_types/r2_files/local_api.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from dotenv import dotenv_values

from dlt_platform.local.bigquery_emulator import BigQueryEmulator
from dlt_platform.local.sample_data import sample_namespaces
from dlt_platform.operator_client import OperatorClient, sync_sources
from dlt_platform.processes import ProcessError, Supervisor
from dlt_platform.settings import (
    ALLOW_PRIVATE_HOSTS_VARIABLE,
    PROJECT_ROOT,
    SOURCE_SECRETS_VARIABLE,
    Settings,
    private_host_allowance,
    source_secret_hosts,
)
from dlt_platform.source_types.d1.local_api import SAMPLE_APP_ORDERS, SAMPLE_APP_USERS, sample_app_sql
from dlt_platform.source_types.r2_files.local_api import SAMPLE_BUCKET, seed_logpush_folder
from dlt_platform.source_types.rest_api.definition import RestApiSourceDefinition
from dlt_platform.source_types.rest_api.local_api import SAMPLE_API_CREDENTIALS, SAMPLE_API_PORT

# The Worker var holding the signing secret of local webhook sources (their extract.signature.secret_names).
LOCAL_WEBHOOK_SECRET = "LOCAL_WEBHOOK_SECRET"


# Tokens, local D1/KV/queues, Dagster home and logs of the local stack (git-ignored).
DEFAULT_STATE_DIR = PROJECT_ROOT / ".local"


class StackError(RuntimeError):
    """A part of the local stack that did not come up; the message says which and where its log is."""


@dataclass
class StackPaths:
    state_dir: Path = DEFAULT_STATE_DIR
    data_dir: Path = PROJECT_ROOT / ".data"

    @property
    def worker_env(self) -> Path:
        return self.state_dir / "worker.env"

    @property
    def wrangler_state(self) -> Path:
        return self.state_dir / "wrangler"

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def seed_marker(self) -> Path:
        return self.state_dir / "kv_seeded.json"


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a dotenv file (none when it does not exist), as wrangler's --env-file reads it."""
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


@dataclass(frozen=True)
class RunningWorker:
    """A local Worker that answers: its URL and the internal token the KV page API wants."""

    url: str
    internal_token: str = field(repr=False)
    env_file: Path


def running_local_worker(state_dir: Path = DEFAULT_STATE_DIR) -> RunningWorker | None:
    """The Worker `dlt-platform up` started from `state_dir`, if it is still up: its worker.env names its URL
    (DLT_ORCHESTRATOR_URL; PUBLIC_URL in state folders written before) and tokens, and /health must answer with D1
    ok."""
    env_file = StackPaths(state_dir=state_dir).worker_env
    values = read_env_file(env_file)
    url, token = values.get("DLT_ORCHESTRATOR_URL") or values.get("PUBLIC_URL"), values.get("DLT_INTERNAL_TOKEN")
    if not url or not token or not worker_answers(url):
        return None
    return RunningWorker(url=url, internal_token=token, env_file=env_file)


def env_file_value(value: str) -> str:
    """A value as a dotenv line holds it: JSON and other text with quotes or # in single quotes."""
    return f"'{value}'" if any(char in value for char in "\"'# ") and "'" not in value else value


def worker_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).json().get("d1") == "ok"
    except (httpx.HTTPError, ValueError):
        return False


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class LocalStack:
    paths: StackPaths = field(default_factory=StackPaths)
    worker_port: int = 8787
    dagster_port: int = 3000
    config_path: Path = PROJECT_ROOT / "config" / "sources.json"
    # Local launch retries start at 2 s so a run requested while Dagster is down dead-letters in seconds.
    launch_retry_base_seconds: int = 2
    extra_worker_vars: dict[str, str] = field(default_factory=dict)
    # Added to Dagster's environment, e.g. DAGSTER_PG_URL to keep its history in Postgres.
    extra_dagster_env: dict[str, str] = field(default_factory=dict)
    warehouse: str = "duckdb"  # or "bigquery": the emulator on emulator_port
    emulator_port: int = 9050
    sample_api_port: int = SAMPLE_API_PORT
    # Every run in its own process of the local run-container host (False: run workers are Dagster's children).
    run_containers: bool = True
    # Default: the Worker's port + 4 (8791 beside 8787), so `up --worker-port` and the tests' stacks on free ports
    # find the host of their own Worker again.
    run_container_host_port: int | None = None
    supervisor: Supervisor = field(default_factory=Supervisor)

    @property
    def processes(self) -> dict[str, subprocess.Popen]:
        """The processes this stack started (not the reused ones), by name."""
        return self.supervisor.processes

    @property
    def emulator(self) -> BigQueryEmulator:
        return BigQueryEmulator(port=self.emulator_port, log_path=self.paths.logs / "bqemulator.log")

    @property
    def worker_url(self) -> str:
        return f"http://127.0.0.1:{self.worker_port}"

    @property
    def dagster_url(self) -> str:
        return f"http://127.0.0.1:{self.dagster_port}"

    # --- tokens and env files ---------------------------------------------------------------------------

    def tokens(self) -> dict[str, str]:
        """Operator, read-only and internal tokens, the admin session key and the local webhook signing secret,
        generated on first use and kept in the git-ignored state folder."""
        values = read_env_file(self.paths.worker_env)
        changed = False
        for name in ("DLT_OPERATOR_TOKEN", "DLT_READONLY_TOKEN", "DLT_INTERNAL_TOKEN", "ADMIN_SESSION_KEY"):
            if not values.get(name):
                values[name] = secrets.token_urlsafe(32)
                changed = True
        # Shaped "whsec_<base64>" so one secret signs for every preset (svix decodes it; the others use it as is).
        if not values.get(LOCAL_WEBHOOK_SECRET):
            values[LOCAL_WEBHOOK_SECRET] = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
            changed = True
        wanted = {
            "DAGSTER_URL": self.dagster_url,
            "LAUNCH_RETRY_BASE_SECONDS": str(self.launch_retry_base_seconds),
            "DLT_ORCHESTRATOR_URL": self.worker_url,
            # The local Dagster keeps its history and definitions on this machine (GET /health accepts it).
            "DLT_PLATFORM_ALLOW_EMBEDDED": "1",
            # The sample API's source names a loopback base_url, which the Worker otherwise refuses.
            ALLOW_PRIVATE_HOSTS_VARIABLE: self.sample_api_host,
            # Where the Worker starts run containers, and the secrets it gives the runs that name them.
            "RUN_CONTAINER_HOST_URL": self.run_container_host_url if self.run_containers else "",
            **(self.sample_api_credentials() if self.run_containers else {}),
            **(
                {SOURCE_SECRETS_VARIABLE: self.sample_api_scopes()[SOURCE_SECRETS_VARIABLE]}
                if self.run_containers
                else {}
            ),
            **self.extra_worker_vars,
        }
        if any(values.get(name) != value for name, value in wanted.items()):
            values.update(wanted)
            changed = True
        if changed:
            self.paths.state_dir.mkdir(parents=True, exist_ok=True)
            self.paths.worker_env.write_text(
                "".join(f"{name}={env_file_value(value)}\n" for name, value in values.items())
            )
            self.paths.worker_env.chmod(0o600)
        return values

    def sample_api_credentials(self) -> dict[str, str]:
        """The sample REST API's bearer token and API key. Fixed rather than generated: one sample API on its
        port serves every local stack (a second stack reuses it), and it only ever holds sample data."""
        return {name: os.environ.get(name) or value for name, value in SAMPLE_API_CREDENTIALS.items()}

    def sample_api_scopes(self) -> dict[str, str]:
        """The sample API's secrets listed for sources and bound to its host, and its loopback address allowed:
        rest_api sources use no secret that is not listed and reach no private host that is not allowed
        (dlt_platform/source_types/rest_api/credentials.py, hosts.py). The operator's own entries are kept."""
        listed = {name: list(hosts) for name, hosts in source_secret_hosts().items()}
        for name in SAMPLE_API_CREDENTIALS:
            listed[name] = list(dict.fromkeys([*listed.get(name, []), self.sample_api_host]))
        allowed = dict.fromkeys([*private_host_allowance(), self.sample_api_host])
        return {SOURCE_SECRETS_VARIABLE: json.dumps(listed), ALLOW_PRIVATE_HOSTS_VARIABLE: ",".join(allowed)}

    def operator(self) -> OperatorClient:
        return OperatorClient(self.worker_url, self.tokens()["DLT_OPERATOR_TOKEN"])

    def dagster_env(self) -> dict[str, str]:
        tokens = self.tokens()
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.paths.dagster_home),
            "DLT_ORCHESTRATOR_URL": self.worker_url,
            "DLT_INTERNAL_TOKEN": tokens["DLT_INTERNAL_TOKEN"],
            "DLT_PLATFORM_DESTINATION": self.warehouse,
            "DLT_PLATFORM_KV_TRANSPORT": "worker",
            "DLT_PLATFORM_DATA_DIR": str(self.paths.data_dir),
            "DLT_PLATFORM_CONFIG": str(self.config_path),
            **self.sample_api_credentials(),
            **self.sample_api_scopes(),
            **self.extra_dagster_env,
            **(self.emulator.client_env() if self.warehouse == "bigquery" else {}),
            "DLT_PLATFORM_RUN_CONTAINERS": "1" if self.run_containers else "0",
        }

    # --- processes --------------------------------------------------------------------------------------

    def _wrangler(self, *args: str) -> list[str]:
        binary = PROJECT_ROOT / "node_modules" / ".bin" / "wrangler"
        if not binary.exists():
            raise StackError("wrangler is not installed: run `npm ci` (or `make up`) first")
        return [str(binary), *args]

    def _run(self, name: str, command: list[str]) -> None:
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        with open(self.paths.logs / f"{name}.log", "ab") as log:
            result = subprocess.run(
                command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        if result.returncode != 0:
            raise StackError(f"{name} failed (exit {result.returncode}); see {self.paths.logs / f'{name}.log'}")

    def _start(self, name: str, command: list[str], ready, timeout: float, env: dict[str, str] | None = None) -> None:
        self.supervisor.start(name, command, env=env, log_path=self.paths.logs / f"{name}.log")
        try:
            self.supervisor.wait_ready(name, ready, timeout)
        except ProcessError as error:
            raise StackError(str(error)) from None

    def stop(self, name: str) -> None:
        self.supervisor.stop(name)

    def stop_all(self) -> None:
        self.supervisor.stop_all()

    def stop_all_on_sigterm(self) -> None:
        """SIGTERM (a service manager, `kill`, a CI timeout) ends this process like Ctrl-C does: the caller's
        `finally: stop_all()` runs. Without it Python dies at once and wrangler and Dagster, each in a session of
        its own, keep running."""

        def interrupt(signum, _frame) -> None:
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")

        signal.signal(signal.SIGTERM, interrupt)

    # --- the Worker ---------------------------------------------------------------------------------------

    def worker_healthy(self) -> bool:
        return worker_answers(self.worker_url)

    def prepare_worker_state(self, today: dt.date) -> None:
        """Migrate the local D1 and seed the local KV namespaces (KV once a day)."""
        persist = str(self.paths.wrangler_state)
        self._run(
            "d1-migrations", self._wrangler("d1", "migrations", "apply", "DB", "--local", "--persist-to", persist)
        )
        # The sample app the d1 sample source reads (idempotent: the same rows every time).
        sample_app = self.paths.state_dir / "d1_sample_app.sql"
        sample_app.write_text(sample_app_sql())
        self._run(
            "d1-sample-app",
            self._wrangler(
                "d1", "execute", "DB", "--local", "--persist-to", persist, "--file", str(sample_app), "--yes"
            ),
        )
        marker = json.loads(self.paths.seed_marker.read_text()) if self.paths.seed_marker.is_file() else {}
        if marker.get("date") == today.isoformat():
            return
        seed_dir = self.paths.state_dir / "kv_seed"
        seed_dir.mkdir(parents=True, exist_ok=True)
        files = []
        for title, entries in sample_namespaces(today).items():
            path = seed_dir / f"{title}.json"  # the file format of `wrangler kv bulk put`
            path.write_text(
                json.dumps(
                    [
                        {"key": e.key, "value": e.value, **({"metadata": e.metadata} if e.metadata else {})}
                        for e in entries
                    ]
                )
            )
            files.append(f"{title}={path}")
        # Every namespace in one process (a `wrangler kv bulk put` each started the local runtime three times).
        self._run("kv-seed", ["node", str(PROJECT_ROOT / "worker" / "scripts" / "seed_kv.mjs"), persist, *files])
        self.paths.seed_marker.write_text(json.dumps({"date": today.isoformat()}))

    def start_worker(self) -> bool:
        """Start wrangler dev unless a healthy Worker already answers on the port; True when started here."""
        self.tokens()
        if self.worker_healthy():
            return False
        if not port_is_free(self.worker_port):
            raise StackError(f"port {self.worker_port} is taken by something that is not the Worker")
        self.prepare_worker_state(dt.datetime.now(dt.UTC).date())
        self._start(
            "worker",
            self._wrangler(
                "dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.worker_port),
                "--persist-to",
                str(self.paths.wrangler_state),
                "--env-file",
                str(self.paths.worker_env),
                "--show-interactive-dev-session=false",
            ),
            self.worker_healthy,
            timeout=120,
        )
        return True

    def definitions(self) -> list[dict]:
        """The sources the stack registers in its Worker: the config file's, with the sources of the sample API
        pointed at this stack's port of it (`up --sample-api-port`; tests run stacks side by side)."""
        default_url = f"http://127.0.0.1:{SAMPLE_API_PORT}"
        documents = []
        for definition in Settings(config_path=self.config_path).load_sources():
            if isinstance(definition, RestApiSourceDefinition) and definition.extract.client.base_url == default_url:
                client = definition.extract.client.model_copy(update={"base_url": self.sample_api_url})
                definition = definition.model_copy(
                    update={"extract": definition.extract.model_copy(update={"client": client})}
                )
            documents.append(definition.model_dump(mode="json"))
        return documents

    def sync_sources(self) -> dict[str, str]:
        with self.operator() as client:
            return sync_sources(client, self.definitions())

    # --- Dagster ------------------------------------------------------------------------------------------

    def dagster_graphql(self, query: str, variables: dict | None = None, timeout: float = 10) -> dict:
        response = httpx.post(
            f"{self.dagster_url}/dagster/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout
        )
        response.raise_for_status()
        return response.json()

    def dagster_ready(self) -> bool:
        query = (
            "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
            "locationOrLoadError { __typename } } } } }"
        )
        try:
            entries = self.dagster_graphql(query, timeout=5)["data"]["workspaceOrError"]["locationEntries"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return False
        return any(
            entry["name"] == "dlt_platform"
            and entry["loadStatus"] == "LOADED"
            and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            for entry in entries
        )

    def start_dagster(self) -> bool:
        """Start `dlt-platform serve` unless Dagster already answers on the port; True when started here."""
        if self.dagster_ready():
            return False
        if not port_is_free(self.dagster_port):
            raise StackError(f"port {self.dagster_port} is taken by something that is not Dagster")
        cli = Path(sys.executable).parent / "dlt-platform"
        self._start(
            "dagster",
            [str(cli), "serve", "--host", "127.0.0.1", "--port", str(self.dagster_port)],
            self.dagster_ready,
            timeout=240,
            env=self.dagster_env(),
        )
        return True

    # --- the sample REST API -----------------------------------------------------------------------------

    @property
    def sample_api_url(self) -> str:
        return f"http://{self.sample_api_host}"

    @property
    def sample_api_host(self) -> str:
        return f"127.0.0.1:{self.sample_api_port}"

    def sample_api_ready(self) -> bool:
        try:
            return httpx.get(f"{self.sample_api_url}/health", timeout=2).json().get("service") == "sample_api"
        except (httpx.HTTPError, ValueError):
            return False

    def start_sample_api(self) -> bool:
        """Start the sample REST API unless it already answers on its port; True when started here."""
        if self.sample_api_ready():
            return False
        if not port_is_free(self.sample_api_port):
            raise StackError(f"port {self.sample_api_port} is taken by something that is not the sample API")
        self._start(
            "sample_api",
            [sys.executable, "-m", "dlt_platform.source_types.rest_api.local_api", "--port", str(self.sample_api_port)],
            self.sample_api_ready,
            timeout=30,
            env={**os.environ, **self.sample_api_credentials()},
        )
        return True

    # --- the local run-container host ---------------------------------------------------------------------

    @property
    def run_container_port(self) -> int:
        return self.run_container_host_port or self.worker_port + 4

    @property
    def run_container_host_url(self) -> str:
        return f"http://127.0.0.1:{self.run_container_port}"

    def run_container_host_ready(self) -> bool:
        token = self.tokens()["DLT_INTERNAL_TOKEN"]
        try:
            return (
                httpx.get(
                    f"{self.run_container_host_url}/containers/readiness-probe",
                    timeout=2,
                    headers={"Authorization": f"Bearer {token}"},
                )
                .json()
                .get("status")
                == "not_found"
            )
        except (httpx.HTTPError, ValueError):
            return False

    def start_run_container_host(self) -> bool:
        """Start the local run-container host unless one answers on its port with this stack's token; True when
        started here. Its runs are its children: they outlive a restart of Dagster."""
        if self.run_container_host_ready():
            return False
        if not port_is_free(self.run_container_port):
            raise StackError(
                f"port {self.run_container_port} is taken by something that is not this stack's run-container host"
            )
        env = {**os.environ, "DLT_INTERNAL_TOKEN": self.tokens()["DLT_INTERNAL_TOKEN"]}
        self._start(
            "run_containers",
            [
                sys.executable,
                "-m",
                "dlt_platform.local.run_container_host",
                "--port",
                str(self.run_container_port),
                "--log-dir",
                str(self.paths.logs / "runs"),
            ],
            self.run_container_host_ready,
            timeout=30,
            env=env,
        )
        return True

    # --- the BigQuery emulator ---------------------------------------------------------------------------

    def start_emulator(self) -> bool:
        """Start the BigQuery emulator unless one already answers on the port; True when started here."""
        emulator = self.emulator
        if emulator.ready():
            return False
        if not port_is_free(self.emulator_port):
            raise StackError(f"port {self.emulator_port} is taken by something that is not the BigQuery emulator")
        process = emulator.start().process
        if process is None:  # start() keeps the process it started, or raises
            raise StackError("the BigQuery emulator did not start")
        self.supervisor.adopt("bqemulator", process)
        return True

    def start(self, say=print) -> None:
        if self.warehouse == "bigquery":
            say(f"BigQuery emulator: {'started' if self.start_emulator() else 'reused'} at {self.emulator.url}")
        say(f"Worker: {'started' if self.start_worker() else 'reused'} at {self.worker_url}")
        say(
            f"Local D1: the sample app's app_users and app_orders ({SAMPLE_APP_USERS + SAMPLE_APP_ORDERS:,} rows) "
            "beside the ledger in DB"
        )
        say(f"Sample REST API: {'started' if self.start_sample_api() else 'reused'} at {self.sample_api_url}")
        lines = seed_logpush_folder(self.paths.data_dir, dt.datetime.now(dt.UTC).date())
        say(f"Local R2: {lines} Logpush lines of today in {self.paths.data_dir / 'r2' / SAMPLE_BUCKET}")
        if self.run_containers:
            say(
                f"Run-container host: {'started' if self.start_run_container_host() else 'reused'} at "
                f"{self.run_container_host_url} (one process per run, logs in {self.paths.logs / 'runs'})"
            )
        synced = self.sync_sources()
        say("sources in D1: " + ", ".join(f"{source_id} {what}" for source_id, what in synced.items()))
        say(f"Dagster: {'started' if self.start_dagster() else 'reused'} at {self.dagster_url}/dagster")
