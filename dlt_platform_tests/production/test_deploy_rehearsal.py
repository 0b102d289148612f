"""docs/deploy.md carried out end to end, in order, against local stand-ins of what Cloudflare provides.

The commands are read from the doc's `sh` blocks (deploy_doc.shell_commands): the doc owns the sequence, this
test owns how each command is stood in for here. Each command must match one entry of REHEARSAL; an entry
either runs the command (as written, or with the local flag named in its entry) or names why it cannot run on
this machine. A doc edit that adds a command without a stand-in, drops a step the deployment needs (secrets,
the deploy, sources, the checks, the later deploy), or reorders them so one finds nothing to work on fails here.

Stand-ins: the release is a copy of the repository (production/release.py) served by `wrangler dev` with the
production wrangler.toml (`[dev] enable_containers = false`: the Worker reaches Dagster at DAGSTER_URL instead of
the container binding, and starts run containers on the local run-container host at RUN_CONTAINER_HOST_URL
instead of RUNNER); `wrangler secret put` becomes a line of `.dev.vars`, which holds exactly the names of
the doc's secrets table; D1 migrations run `--local` for `--remote`; the container is `dlt-platform serve` with
the Dockerfile's ENV (its /app paths in a temp folder) and exactly what container.ts forwards (CONTAINER_ENV, as
test_container.py holds the two alike); Dagster's storage is a throw-away Postgres; DuckDB stands in for
BigQuery and the Worker's KV binding for the REST API (DLT_PLATFORM_DESTINATION, DLT_PLATFORM_KV_TRANSPORT, set
as the secrets they are). The later deploy is an upgrade: release N+1 adds a migration; nothing recorded by
release N may be lost.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from dlt_platform.local.loopback import free_port
from dlt_platform.local.sample_data import order_entries
from dlt_platform.operator_client import OperatorClient
from dlt_platform.processes import stop_process
from dlt_platform.settings import CONTAINER_ENV, PROJECT_ROOT, WORKER_SECRETS
from dlt_platform_tests.deploy_doc import DocCommand, secrets_table, shell_commands
from dlt_platform_tests.postgres_fixtures import postgres  # noqa: F401  (session fixture)
from dlt_platform_tests.production.release import WranglerDev, make_release, wrangler
from dlt_platform_tests.waiting import poll

VERIFIED_SOURCE = "cloudflare_kv_orders"
SEEDED_ORDERS = 200


class CannotRunHere(Exception):
    """A doc step that needs the cloud; its entry says what stands in for it."""


@dataclass
class Rehearsal:
    release: Path
    postgres: object
    log_dir: Path
    worker_port: int = field(default_factory=free_port)
    dagster_port: int = field(default_factory=free_port)
    runner_port: int = field(default_factory=free_port)
    put: dict[str, str] = field(default_factory=dict)  # `wrangler secret put` NAME -> where the doc reads it from
    exported: dict[str, str] = field(default_factory=dict)
    worker: WranglerDev | None = None
    serve: subprocess.Popen | None = None
    runner_host: subprocess.Popen | None = None
    deploys: int = 0
    pushed: bool = False
    verified_run: str | None = None
    upgraded: bool = False
    ran: list[str] = field(default_factory=list)  # what each doc command became, for the report on failure

    def __post_init__(self) -> None:
        self.values = self.secret_values()

    @property
    def worker_url(self) -> str:
        return f"http://127.0.0.1:{self.worker_port}"

    # --- the stand-ins ------------------------------------------------------------------------------------

    def secret_values(self) -> dict[str, str]:
        """A local value for every secret the doc's table lists; empty means "not set" (the Worker forwards
        nothing for it). A required name without a stand-in here fails the rehearsal."""
        database = f"rehearsal_{secrets.token_hex(4)}"
        stand_ins = {
            "DLT_OPERATOR_TOKEN": secrets.token_urlsafe(32),
            "DLT_INTERNAL_TOKEN": secrets.token_urlsafe(32),
            "ADMIN_SESSION_KEY": secrets.token_urlsafe(32),
            "DLT_ORCHESTRATOR_URL": self.worker_url,
            "DAGSTER_PG_URL": self.postgres.create_database(database),
            # DuckDB stands in for BigQuery, the Worker's KV binding for Cloudflare's REST API.
            "DLT_PLATFORM_DESTINATION": "duckdb",
            "DLT_PLATFORM_KV_TRANSPORT": "worker",
        }
        self.database = database
        # Everything else is left unset, as a deployment that does not use it leaves it: no alert receiver, snapshots
        # on the container's disk, no custom domain, no rest_api source, no BigQuery; and not
        # DLT_PLATFORM_ALLOW_EMBEDDED: the rehearsal proves the production shape (Postgres, the Worker URL).
        required = {v.name for v in (*WORKER_SECRETS, *CONTAINER_ENV) if v.required}
        values = {}
        for name in secrets_table():
            if name in stand_ins:
                values[name] = stand_ins[name]
            elif name in required:
                raise AssertionError(f"docs/deploy.md requires the secret {name}: give the rehearsal a stand-in for it")
            else:
                values[name] = ""
        return values

    def write_dev_vars(self) -> None:
        """`.dev.vars`: exactly the names of the doc's secrets table (wrangler dev reads it as `secret put`)."""
        missing = [v.name for v in (*WORKER_SECRETS, *CONTAINER_ENV) if v.required and v.name not in self.put]
        assert not missing, f"docs/deploy.md deploys without `wrangler secret put` of required {missing}"
        path = self.release / ".dev.vars"
        path.write_text("".join(f"{name}={json.dumps(value)}\n" for name, value in self.values.items()))
        path.chmod(0o600)

    def container_env(self) -> dict[str, str]:
        """What the container process gets: the Dockerfile's ENV (its /app paths moved to a folder here), then
        what container.ts forwards (the declared names that are set, as containerEnv does), and no more than a
        process needs to run (PATH, a HOME)."""
        app_root = self.log_dir / "app"
        dockerfile = (self.release / "Dockerfile").read_text()
        image_stage = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[-1]  # the image is the last stage
        env_blocks = re.findall(r"^ENV (.+?)(?=^\S)", image_stage, flags=re.MULTILINE | re.DOTALL)
        image_env = dict(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", "\n".join(env_blocks)))
        env = {name: value.replace("/app", str(app_root)) for name, value in image_env.items()}
        forwarded = {v.name: self.values[v.name] for v in CONTAINER_ENV if self.values.get(v.name)}
        home = app_root / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {"PATH": os.environ["PATH"], "HOME": str(home), **env, **forwarded}

    def start_serve(self) -> None:
        env = self.container_env()
        assert env.get("DLT_PLATFORM_CONTAINER") == "1", "the Dockerfile no longer marks the container"
        with open(self.log_dir / "serve.log", "ab") as log:
            self.serve = subprocess.Popen(
                [str(Path(sys.executable).parent / "dlt-platform"), "serve", "--host", "127.0.0.1", "--port",
                 str(self.dagster_port)], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

        def dagster_loaded() -> bool:
            assert self.serve.poll() is None, f"serve exited with {self.serve.returncode}; see {self.log_dir}/serve.log"
            query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
            try:
                response = httpx.post(f"http://127.0.0.1:{self.dagster_port}/dagster/graphql", json={"query": query},
                                      timeout=5)
                entries = response.json()["data"]["workspaceOrError"]["locationEntries"]
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                return False
            return any(entry["loadStatus"] == "LOADED" for entry in entries)

        poll(dagster_loaded, 300, 1, "Dagster (serve) to load its code location")

    def start_runner_host(self) -> None:
        """Cloudflare's run containers (the Worker's RUNNER binding): the local run-container host, which runs each
        Dagster run as a process with exactly the environment the Worker gives it."""
        env = {"PATH": os.environ["PATH"], "HOME": str(self.log_dir),
               "DLT_INTERNAL_TOKEN": self.values["DLT_INTERNAL_TOKEN"]}
        with open(self.log_dir / "run-container-host.log", "ab") as log:
            self.runner_host = subprocess.Popen(
                [sys.executable, "-m", "dlt_platform.local.run_container_host", "--port", str(self.runner_port),
                 "--log-dir", str(self.log_dir / "runs")], env=env, cwd=PROJECT_ROOT, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

        def ready() -> bool:
            assert self.runner_host.poll() is None, f"the run-container host exited; see {self.log_dir}"
            try:
                return httpx.get(f"http://127.0.0.1:{self.runner_port}/containers/readiness-probe", timeout=2,
                                 headers={"Authorization": f"Bearer {self.values['DLT_INTERNAL_TOKEN']}"}
                                 ).json().get("status") == "not_found"
            except (httpx.HTTPError, ValueError):
                return False

        poll(ready, 60, 0.5, "the run-container host")

    def stop_serve(self) -> None:
        if self.serve is not None:
            stop_process(self.serve, 30)
            self.serve = None

    def cli(self, command: str, env_extra: dict[str, str] | None = None, timeout: float = 900
            ) -> subprocess.CompletedProcess:
        """A doc command run as written, in the release, with the variables the doc exported."""
        env = {**os.environ, **self.exported, "COLUMNS": "200", **(env_extra or {})}
        for name in ("DLT_PLATFORM_CONFIG", "DLT_PLATFORM_DESTINATION", "DLT_PLATFORM_KV_TRANSPORT"):
            env.pop(name, None)  # the operator's shell has none of the test session's settings
        result = subprocess.run(command, shell=True, cwd=self.release, env=env, capture_output=True, text=True,
                                timeout=timeout)
        (self.log_dir / "commands.log").open("a").write(f"$ {command}\n{result.stdout}{result.stderr}\n")
        return result

    def operator(self) -> OperatorClient:
        return OperatorClient(self.worker_url, self.values["DLT_OPERATOR_TOKEN"])

    # --- the doc's commands ---------------------------------------------------------------------------------

    def cannot(self, reason: str) -> Callable[[re.Match], None]:
        def step(_match: re.Match) -> None:
            raise CannotRunHere(reason)
        return step

    def secret_put(self, match: re.Match) -> None:
        name = match["name"]
        assert name in self.values, f"`wrangler secret put {name}`: not in the doc's secrets table"
        self.put[name] = match["source"] or "prompt"

    def export(self, match: re.Match) -> None:
        local = {"DLT_ORCHESTRATOR_URL": self.worker_url, "DLT_OPERATOR_TOKEN": self.values["DLT_OPERATOR_TOKEN"]}
        for name in re.findall(r"\b([A-Z_][A-Z0-9_]*)=", match[0]):
            assert name in local, f"`export {name}=...`: the rehearsal has no local value for {name}"
            self.exported[name] = local[name]

    def make_deploy(self, _match: re.Match) -> None:
        assert set(self.exported) >= {"DLT_ORCHESTRATOR_URL", "DLT_OPERATOR_TOKEN"}, \
            "`make deploy` runs check-deployment: the doc must export DLT_ORCHESTRATOR_URL and DLT_OPERATOR_TOKEN first"
        if self.deploys == 0:
            self.first_deploy()
        else:
            self.upgrade()
        self.deploys += 1

    def deploy_locally(self) -> subprocess.CompletedProcess:
        """`make deploy` with DEPLOY_FLAGS=--local: migrations --local instead of --remote, the real deploy skipped."""
        result = self.cli("make deploy DEPLOY_FLAGS=--local")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "$ npx wrangler d1 migrations apply DB --local" in result.stdout
        assert "skipped: npx wrangler deploy" in result.stdout and "health: ok" in result.stdout
        return result

    def first_deploy(self) -> None:
        self.write_dev_vars()
        # `wrangler deploy` puts the Worker up: here wrangler dev serves it, DAGSTER_URL and RUN_CONTAINER_HOST_URL
        # standing in for the container bindings DAGSTER and RUNNER (wrangler dev runs no container).
        self.start_runner_host()
        self.worker = WranglerDev(self.release, self.worker_port, self.log_dir / "wrangler-dev.log", extra_args=(
            "--var", f"DAGSTER_URL:http://127.0.0.1:{self.dagster_port}",
            "--var", f"RUN_CONTAINER_HOST_URL:http://127.0.0.1:{self.runner_port}")).start()
        self.deploy_locally()
        with self.operator() as client:
            assert client.health()["missing"] == {"secrets": [], "bindings": []}
        # The first request to the Worker wakes the container: here serve starts with the container's environment.
        self.start_serve()

    def sources_push(self, match: re.Match) -> None:
        assert self.worker is not None, "`sources push` needs the deployed Worker: the doc pushes before `make deploy`"
        result = self.cli(match[0])
        assert result.returncode == 0, result.stdout + result.stderr
        with self.operator() as client:
            stored = [source["source_id"] for source in client.sources()]
        if match["dry_run"]:
            assert stored == [] or self.pushed, "a dry run changed D1"
            assert f"would create {VERIFIED_SOURCE}" in result.stdout or self.pushed
        else:
            assert VERIFIED_SOURCE in stored, result.stdout
            self.pushed = True

    def check_deployment(self, match: re.Match) -> None:
        assert self.worker is not None, "`check-deployment` needs the deployed Worker"
        result = self.cli(match[0])
        assert result.returncode == 0, result.stdout + result.stderr
        assert "health: ok (D1 ok" in result.stdout and "missing" not in result.stdout

    def verify_deployment(self, match: re.Match) -> None:
        assert self.pushed, "`verify-deployment` needs the sources: the doc verifies before `sources push`"
        result = self.cli(match[0])
        assert result.returncode == 0, result.stdout + result.stderr
        self.verified_run = re.search(r"verified: (run_\S+) succeeded", result.stdout).group(1)

    def upgrade(self) -> None:
        """Release N+1: a new D1 migration, deployed by the doc's later-deploy command, then the new image (serve
        restarted). What release N recorded must all be there, and the deployment must still run sources."""
        assert self.verified_run, "the later deploy comes before any run was recorded: nothing to keep"
        with self.operator() as client:
            sources_before = {s["source_id"]: s["version"] for s in client.sources()}
            run_before = client.run(self.verified_run)
        dagster_runs_before = self.dagster_run_ids()
        assert run_before["dagster_run_id"] in dagster_runs_before

        migrations = self.release / "worker" / "migrations"
        number = max(int(path.name[:4]) for path in migrations.glob("[0-9][0-9][0-9][0-9]_*.sql")) + 1
        new_migration = migrations / f"{number:04d}_rehearsal_upgrade.sql"
        new_migration.write_text("CREATE TABLE rehearsal_upgrade (id INTEGER PRIMARY KEY, note TEXT NOT NULL);\n"
                                 "INSERT INTO rehearsal_upgrade (note) VALUES ('release N+1');\n")
        result = self.deploy_locally()
        assert new_migration.name in result.stdout, result.stdout
        # The new image: the container restarts, serve migrates Dagster's storage before Dagster starts.
        self.stop_serve()
        self.start_serve()

        table = wrangler(self.release, "d1", "execute", "DB", "--local", "--json", "--command",
                         "SELECT note FROM rehearsal_upgrade")
        assert table.returncode == 0 and json.loads(table.stdout)[0]["results"] == [{"note": "release N+1"}], table
        with self.operator() as client:
            assert {s["source_id"]: s["version"] for s in client.sources()} == sources_before
            run_after = client.run(self.verified_run)
            assert {key: run_after[key] for key in ("status", "rows_loaded", "dagster_run_id", "tables")} == \
                   {key: run_before[key] for key in ("status", "rows_loaded", "dagster_run_id", "tables")}
            assert [e["status"] for e in run_after["events"]] == [e["status"] for e in run_before["events"]]
            assert self.dagster_run_ids() >= dagster_runs_before
            # Release N+1 runs sources too.
            after = client.request_run(VERIFIED_SOURCE, limit=5)
            assert client.wait_for_runs([after], timeout=600)[after]["status"] == "succeeded"
        self.upgraded = True

    def dagster_run_ids(self) -> set[str]:
        return {row[0] for row in self.postgres.query(self.database, "select run_id from runs")}


def rehearsal_steps(rehearsal: Rehearsal) -> list[tuple[str, Callable[[re.Match], None]]]:
    """Each doc command's pattern and what the rehearsal does for it."""
    r = rehearsal
    return [
        (r"npx wrangler login", r.cannot("signs in to a Cloudflare account; wrangler dev needs none")),
        (r"npx wrangler d1 create dlt_control", r.cannot(
            "creates the cloud database; wrangler keeps the local D1 under the release's .wrangler/state")),
        (r"npx wrangler queues create dlt-jobs-v2(-dlq)?", r.cannot(
            "creates a cloud queue; wrangler dev runs the queues wrangler.toml names")),
        (r"npx wrangler r2 bucket create dlt-raw-staging", r.cannot(
            "creates the cloud bucket; wrangler dev keeps R2 locally")),
        (r"npx wrangler kv namespace list", r.cannot(
            "lists the account's namespaces; the local ORDERS_KV binding is seeded with sample orders instead")),
        (r"npx wrangler secret put (?P<name>[A-Z][A-Z0-9_]*)(?: < (?P<source>\S+))?", r.secret_put),
        (r"export [A-Z_][A-Z0-9_]*=.*", r.export),
        (r"make deploy", r.make_deploy),
        (r"\.venv/bin/dlt-platform sources push --file config/sources\.json(?P<dry_run> --dry-run)?", r.sources_push),
        (r"\.venv/bin/dlt-platform check-deployment", r.check_deployment),
        (rf"\.venv/bin/dlt-platform verify-deployment --source-id {VERIFIED_SOURCE}", r.verify_deployment),
    ]


def seed_release(release: Path) -> None:
    """What the account already holds: orders in the ORDERS_KV namespace; and the sources file, the sample's
    KV orders source alone (the other samples read services that have no stand-in here)."""
    seed = release / "orders_seed.json"
    seed.write_text(json.dumps([{"key": e.key, "value": e.value, **({"metadata": e.metadata} if e.metadata else {})}
                                for e in order_entries(SEEDED_ORDERS)]))
    seeded = wrangler(release, "kv", "bulk", "put", str(seed), "--binding", "ORDERS_KV", "--local")
    assert seeded.returncode == 0, seeded.stderr
    sources = json.loads((release / "config" / "sources.json").read_text())
    sources["sources"] = [s for s in sources["sources"] if s["source_id"] == VERIFIED_SOURCE]
    (release / "config" / "sources.json").write_text(json.dumps(sources, indent=2))


@pytest.fixture
def rehearsal(tmp_path, postgres):  # noqa: F811
    release = make_release(tmp_path / "release")
    seed_release(release)
    logs = tmp_path / "logs"
    logs.mkdir()
    staged = Rehearsal(release=release, postgres=postgres, log_dir=logs)
    try:
        yield staged
    finally:
        staged.stop_serve()
        if staged.worker is not None:
            staged.worker.stop()
        if staged.runner_host is not None:
            stop_process(staged.runner_host, 30)


def carry_out(rehearsal: Rehearsal, commands: list[DocCommand]) -> list[str]:
    """Every doc command in order through its stand-in; returns the steps named as not runnable here."""
    assert commands, "docs/deploy.md has no sh blocks"
    steps = rehearsal_steps(rehearsal)
    cannot_run: list[str] = []
    for command in commands:
        handlers = [(match, handler) for pattern, handler in steps
                    if (match := re.fullmatch(pattern, command.text))]
        assert handlers, (f"docs/deploy.md line {command.line} ({command.section}): `{command.text}` has no stand-in "
                          "in the rehearsal; add one to rehearsal_steps or name why it cannot run here")
        match, handler = handlers[0]
        try:
            handler(match)
            rehearsal.ran.append(command.text)
        except CannotRunHere as reason:
            cannot_run.append(f"{command.text}: {reason}")
    # The deployment the doc describes happened: deployed, sources in D1, verified, upgraded.
    assert rehearsal.deploys == 2, f"the doc runs `make deploy` {rehearsal.deploys} times (first deploy, later deploy)"
    assert rehearsal.pushed and rehearsal.verified_run and rehearsal.upgraded
    return cannot_run


@pytest.mark.timeout(1800)
def test_deploy_md_carried_out_in_order_with_an_upgrade(rehearsal):
    cannot_run = carry_out(rehearsal, shell_commands())
    print("doc steps that cannot run here:", *cannot_run, sep="\n  ")


def edited_doc(tmp_path: Path, edit: Callable[[str], str]) -> list[DocCommand]:
    doc = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    edited = edit(doc)
    assert edited != doc
    path = tmp_path / "deploy.md"
    path.write_text(edited)
    return shell_commands(path)


@pytest.mark.parametrize("edit, failure", [
    (lambda doc: doc.replace("npx wrangler secret put DAGSTER_PG_URL\n", ""),
     r"deploys without `wrangler secret put` of required \['DAGSTER_PG_URL'\]"),
    (lambda doc: doc.replace("make deploy\n", "npx wrangler deploy\n", 1),
     r"`npx wrangler deploy` has no stand-in"),
    (lambda doc: doc.replace("```sh\nexport DLT_ORCHESTRATOR_URL", "```sh\n.venv/bin/dlt-platform sources push "
                             "--file config/sources.json\nexport DLT_ORCHESTRATOR_URL"),
     r"`sources push` needs the deployed Worker"),
], ids=["a required secret no longer put", "deploy without the migrations", "sources pushed before the deploy"])
def test_a_doc_edit_that_breaks_the_sequence_fails(rehearsal, tmp_path, edit, failure):
    with pytest.raises(AssertionError, match=failure):
        carry_out(rehearsal, edited_doc(tmp_path, edit))
    # Refused at the step, before anything was started.
    assert rehearsal.worker is None and rehearsal.serve is None and rehearsal.runner_host is None
