"""Deploy and operate an orchestrator: `deploy` (D1 migrations, wrangler deploy, check), `check-deployment` and
`verify-deployment` through its operator API, and regenerate the files the Worker reads from the Python side
(`schema`)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Annotated

import typer

from dlt_platform.cli.app import (
    DEPLOYMENT,
    JsonOption,
    UsageError,
    VerificationFailed,
    app,
    one_line_errors,
    settings,
)
from dlt_platform.cli.output import errors, print_json, print_listing, say
from dlt_platform.cli.runs import follow_runs, print_runs
from dlt_platform.config import parse_definition, render_json_schema
from dlt_platform.contract import render_contract
from dlt_platform.definition_base import OneTableSource
from dlt_platform.load_request import LoadRequest, write_disposition_for
from dlt_platform.operator_client import OperatorClient
from dlt_platform.settings import PROJECT_ROOT
from dlt_platform.source_types.rest_api import REST_API
from dlt_platform.source_types.rest_api.definition import (
    RestApiSourceDefinition,
    loaded_resources,
)

SCHEMA_PATH = PROJECT_ROOT / "config" / "source.schema.json"
CONTRACT_PATH = PROJECT_ROOT / "worker" / "src" / "contract.ts"

UrlOption = Annotated[str | None, typer.Option("--url", help="Orchestrator URL (default: DLT_ORCHESTRATOR_URL).")]


def deployment_client(url: str | None) -> OperatorClient:
    config = settings()
    url = url or config.orchestrator_url
    if not url:
        raise UsageError("--url: no orchestrator URL given and DLT_ORCHESTRATOR_URL is not set")
    return OperatorClient(url, config.operator_token)


@app.command("check-deployment", rich_help_panel=DEPLOYMENT)
def check_deployment(
    url: UrlOption = None,
    runs: Annotated[int, typer.Option(help="Recent runs to show.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Status only: health, sources, recent runs and the launch backlog. Changes nothing."""
    with one_line_errors():
        with deployment_client(url) as client:
            health = client.health()
            stored = client.sources()
            recent = client.runs(limit=runs)
            backlog = [r for status in ("queued", "launching") for r in client.runs(status=status, limit=200)]
        if as_json:
            print_json(
                {"url": client.base_url, "health": health, "sources": stored, "runs": recent, "backlog": backlog}
            )
        else:
            say(
                f"health: {'ok' if health.get('ok') else 'FAILING'} (D1 {health.get('d1')}, "
                f"version {health.get('version')}) at {client.base_url}"
            )
            missing = health.get("missing") or {}
            for kind in ("secrets", "bindings"):
                if missing.get(kind):
                    say(f"missing {kind}: {', '.join(missing[kind])}")
            print_listing(
                ["source_id", "version", "enabled", "schedule", "last run"],
                [
                    {
                        "source_id": source["source_id"],
                        "version": source["version"],
                        "enabled": source["enabled"],
                        "schedule": source["definition"].get("schedule"),
                        "last run": f"{(source.get('last_run') or {}).get('status', '-')} "
                        f"{(source.get('last_run') or {}).get('created_at', '')}".strip(),
                    }
                    for source in stored
                ],
            )
            print_runs(recent)
            oldest = min((r["created_at"] for r in backlog), default=None)
            say(
                f"launch backlog: {len(backlog)} runs queued or launching"
                + (f", oldest from {oldest}" if oldest else "")
            )
        if not health.get("ok"):
            raise typer.Exit(1)


@app.command("verify-deployment", rich_help_panel=DEPLOYMENT)
def verify_deployment(
    url: UrlOption = None,
    source_id: Annotated[str, typer.Option("--source-id")] = "cloudflare_kv_orders",
    limit: Annotated[int, typer.Option(min=1, help="Records the verification run loads.")] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 600,
) -> None:
    """A live limited run of one source through the Worker: waits for it, then checks the ledger and the rows.

    The run is partial, so it merges on cf_kv_key (load_request.write_disposition_for): the keys it reads are
    refreshed with their current values and no row is removed. Sources that append are refused, since a
    verification run would add rows to what users see."""
    with one_line_errors():
        with deployment_client(url) as client:
            health = client.health()
            if not health.get("ok"):
                raise VerificationFailed(f"orchestrator unhealthy: {health}")
            say(_verification_plan(client, source_id, limit))
            run_id = client.request_run(source_id, limit=limit)
            say(f"requested {run_id} ({source_id}, limit {limit})")
            follow_runs(client, [run_id], timeout)
            run = client.run(run_id)
            problems = []
            if run["status"] != "succeeded":
                problems.append(f"status is {run['status']}: {run.get('message') or ''}".strip())
            seen = [event["status"] for event in run.get("events", [])]
            for status in ("queued", "launched", "succeeded"):
                if status not in seen:
                    problems.append(f"ledger has no {status} event")
            rows = run.get("rows_loaded")
            if run["status"] == "succeeded" and not (rows and rows > 0):
                problems.append("no rows loaded")
            main_table = _main_table_rows(run)
            if main_table is not None and main_table > limit:
                problems.append(f"main table got {main_table} rows, more than the limit {limit}")
            print_runs([run])
            if problems:
                raise VerificationFailed("verification failed: " + "; ".join(problems))
            say(f"verified: {run_id} succeeded with {rows} rows merged on cf_kv_key; no row was removed")


def _verification_plan(client: OperatorClient, source_id: str, limit: int) -> str:
    """What the verification run will do to the source's table, from the definition the Worker holds."""
    stored = client.source(source_id)
    if stored is None:
        raise UsageError(f"--source-id: unknown source '{source_id}' at {client.base_url}")
    definition = parse_definition(stored["definition"], "definition.")
    if isinstance(definition, RestApiSourceDefinition):  # a table per resource, each with its own disposition
        return _rest_api_verification_plan(definition, limit)
    if not isinstance(definition, OneTableSource):
        raise UsageError(
            f"--source-id: {source_id} is a {definition.source_type} source; a verification run reads a "
            "source with one table or a rest_api source"
        )
    disposition = write_disposition_for(definition, LoadRequest(limit=limit))
    table = f"{definition.destination.dataset}.{definition.destination.table}"
    if disposition != "merge":
        raise UsageError(
            f"--source-id: {source_id} writes with {disposition}; a verification run would add "
            f"rows to {table}. Verify with a source that merges or replaces."
        )
    return (
        f"verification run: the first {limit} records of {source_id} merged into {table} on cf_kv_key "
        f"(definition: {definition.destination.write_disposition}); keys already there are refreshed, "
        f"no row is removed"
    )


def _rest_api_verification_plan(definition: RestApiSourceDefinition, limit: int) -> str:
    """A limited run of a rest_api source merges every table on its primary key (appending ones are refused)."""
    from dlt_platform.source_types.rest_api.source import resource_disposition

    request = LoadRequest(limit=limit)
    for resource in loaded_resources(definition):
        try:
            disposition = resource_disposition(definition, resource, request)
        except ValueError as error:
            raise UsageError(f"--source-id: {error}") from None
        if disposition != "merge":
            raise UsageError(
                f"--source-id: {definition.source_id} writes {resource.name} with {disposition}; a "
                "verification run would add rows to it. Verify with a source that merges or replaces."
            )
    tables = ", ".join(f"{definition.destination.dataset}.{name}" for name in REST_API.table_names(definition))
    return (
        f"verification run: up to {limit} items per endpoint of {definition.source_id} merged into {tables} on "
        "their primary keys; items already there are refreshed, no row is removed"
    )


def _main_table_rows(run: dict) -> int | None:
    """Rows of the source's main table in a run (child tables such as `__items` may hold more)."""
    tables = run.get("tables") or {}
    main = [count for name, count in tables.items() if "__" not in name]
    return main[0] if len(main) == 1 else None


# The ids wrangler.toml is committed with, made up for the samples. `wrangler deploy --dry-run` checks no id, so a
# deploy with them would fail late, after the Worker is live (docs/deploy.md step 1 says what replaces them).
SAMPLE_D1_ID = "6f1c2a3e-8b4d-4e5f-9a7b-2c3d4e5f6a7b"
SAMPLE_KV_IDS = {
    "ORDERS_KV": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "LEADS_KV": "1b2c3d4e5f60718293a4b5c6d7e8f90a",
    "VENDOR_KV": "2c3d4e5f60718293a4b5c6d7e8f90a1b",
}


def sample_ids(config: dict) -> list[str]:
    """The fields of a wrangler config that still hold the repository's sample ids."""
    found = [
        f"[[d1_databases]] {db.get('binding')} database_id"
        for db in config.get("d1_databases", [])
        if db.get("database_id") == SAMPLE_D1_ID
    ]
    found += [
        f"[[kv_namespaces]] {kv.get('binding')} id"
        for kv in config.get("kv_namespaces", [])
        if kv.get("id") in SAMPLE_KV_IDS.values()
    ]
    return found


def wrangler_binary(folder: Path) -> Path:
    """The wrangler of the release being deployed (its node_modules), else this checkout's."""
    for root in (folder, PROJECT_ROOT):
        binary = root / "node_modules" / ".bin" / "wrangler"
        if binary.exists():
            return binary
    raise UsageError("wrangler is not installed: run `npm ci` (or `make install`) first")


def _wrangler_step(folder: Path, *args: str) -> None:
    say(f"$ npx wrangler {' '.join(args)}")
    # stdin closed: wrangler runs non-interactively (no confirmation prompt) as in CI.
    result = subprocess.run([str(wrangler_binary(folder)), *args], cwd=folder, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise VerificationFailed(
            f"wrangler {' '.join(args[:2])} failed (exit {result.returncode}); the steps after it did not run"
        )


@app.command(rich_help_panel=DEPLOYMENT)
def deploy(
    url: UrlOption = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Rehearse on this machine: migrate wrangler dev's local "
            "D1 and skip the real deploy (named as skipped).",
        ),
    ] = False,
) -> None:
    """Deploy or upgrade, in order: D1 migrations (--remote), `wrangler deploy` (Worker and image), then
    check-deployment. Run from the repository root (its wrangler.toml); `make deploy` runs it.

    Migrations go first so new code never meets a schema without its tables; they must therefore be additive
    (the previous Worker keeps running on the new schema until `wrangler deploy` replaces it)."""
    folder = Path.cwd()
    with one_line_errors():
        if not (folder / "wrangler.toml").is_file():
            raise UsageError(f"deploy: no wrangler.toml in {folder}; run it from the repository root")
        samples = sample_ids(tomllib.loads((folder / "wrangler.toml").read_text(encoding="utf-8")))
        if samples and not local:
            raise UsageError(
                f"wrangler.toml: {', '.join(samples)} still the repository's sample ids; put your own "
                "(docs/deploy.md step 1) before deploying"
            )
        _wrangler_step(folder, "d1", "migrations", "apply", "DB", "--local" if local else "--remote")
        if local:
            say("skipped: npx wrangler deploy (--local: the Worker under test is wrangler dev, nothing is deployed)")
        else:
            _wrangler_step(folder, "deploy")
    check_deployment(url=url, runs=10, as_json=False)


@app.command(rich_help_panel=DEPLOYMENT)
def schema(
    check: Annotated[bool, typer.Option(help="Only check that the committed files are current.")] = False,
) -> None:
    """Regenerate config/source.schema.json (the definition model) and worker/src/contract.ts (run statuses,
    triggers, Dagster tags): what the Worker reads from the Python side; then worker/src/definitions.ts (the
    definitions' TypeScript types, made from the schema by `npm run definition-types`)."""
    generated = {SCHEMA_PATH: render_json_schema(), CONTRACT_PATH: render_contract()}
    if check:
        stale = [
            path.name
            for path, rendered in generated.items()
            if not path.exists() or path.read_text(encoding="utf-8") != rendered
        ]
        if stale:
            errors.print(f"error: {', '.join(stale)} stale; run `dlt-platform schema`")
            raise typer.Exit(1)
        say("config/source.schema.json and worker/src/contract.ts are current")
        return
    for path, rendered in generated.items():
        path.write_text(rendered, encoding="utf-8")
        say(f"wrote {path}")
    typed = subprocess.run(
        ["npm", "run", "--silent", "definition-types"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    if typed.returncode != 0:
        errors.print(
            f"error: `npm run definition-types` failed (run `npm ci` first?): "
            f"{(typed.stderr or typed.stdout).strip().splitlines()[-1:]}"
        )
        raise typer.Exit(1)
    say(f"wrote {PROJECT_ROOT / 'worker' / 'src' / 'definitions.ts'}")
