"""Sources as code: a sources file in git and the definitions the Worker holds in D1, kept alike.

`sources push` applies a file through the operator API (create; a new version where a definition changed, sent
with the version it read so a concurrent edit is refused with 409; `--prune` retires what the file no longer
holds), `sources pull` writes D1's definitions to a file, `sources diff` shows what a push would do. Plain
`sources` (and `sources list`) lists the sources file, as before.

Definitions are sent as the file writes them and compared after parsing both sides with the same model, so a
default written out on one side and left out on the other is no difference; a second push changes nothing.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from dlt_platform.cli.app import (
    DEPLOYMENT,
    EXPLORE,
    JsonOption,
    UsageError,
    app,
    one_line_errors,
    settings,
)
from dlt_platform.cli.deployment import UrlOption, deployment_client
from dlt_platform.cli.explore import list_configured_sources
from dlt_platform.cli.output import say
from dlt_platform.config import (
    DefinitionError,
    load_sources_file,
    parse_definition,
    read_sources_document,
)
from dlt_platform.operator_client import OperatorAPIError, OperatorClient

sources_app = typer.Typer(
    help="The configured sources (list), and the sources file kept alike with the Worker's D1 (push, pull, diff).",
    no_args_is_help=False,
)
app.add_typer(sources_app, name="sources", rich_help_panel=EXPLORE)

FileOption = Annotated[
    Path | None, typer.Option("--file", help="Sources file (default: DLT_PLATFORM_CONFIG or config/sources.json).")
]
ACTOR = "sources-push"


@dataclass
class SourcePlan:
    """What a push does to the Worker's definitions, source by source."""

    create: list[dict] = field(default_factory=list)
    # (definition from the file, the Worker's record it replaces)
    update: list[tuple[dict, dict]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # In D1 but not in the file: retired by --prune, else kept.
    only_in_d1: list[dict] = field(default_factory=list)
    # In the file but retired in D1: a retired source_id cannot come back.
    retired: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.create or self.update or self.only_in_d1 or self.retired)


def canonical(definition: dict) -> dict:
    """A definition as the model writes it: defaults filled in, so both sides compare alike."""
    return parse_definition(definition, f"{definition.get('source_id', '?')}.").model_dump(mode="json")


def plan_push(file_definitions: list[dict], stored: list[dict]) -> SourcePlan:
    by_id = {record["source_id"]: record for record in stored}
    plan = SourcePlan()
    for definition in file_definitions:
        record = by_id.pop(definition["source_id"], None)
        if record is None:
            plan.create.append(definition)
        elif record.get("retired_at"):
            plan.retired.append(definition["source_id"])
        elif canonical(record["definition"]) != canonical(definition):
            plan.update.append((definition, record))
        else:
            plan.unchanged.append(definition["source_id"])
    plan.only_in_d1 = [record for record in by_id.values() if not record.get("retired_at")]
    return plan


def definition_diff(before: dict, after: dict, name: str) -> list[str]:
    """Unified diff of two definitions as sorted, indented JSON (what changes, line by line)."""

    def lines(definition: dict) -> list[str]:
        return json.dumps(definition, indent=2, sort_keys=True).splitlines()

    return list(difflib.unified_diff(lines(before), lines(after), f"{name} (D1)", f"{name} (file)", lineterm="", n=1))


def print_plan(plan: SourcePlan, prune: bool, verb_prefix: str = "") -> None:
    for definition in plan.create:
        say(f"{verb_prefix}create {definition['source_id']}")
    for definition, record in plan.update:
        say(f"{verb_prefix}update {definition['source_id']} (version {record['version']} -> {record['version'] + 1})")
        for line in definition_diff(record["definition"], definition, definition["source_id"]):
            say(f"    {line}")
    for record in plan.only_in_d1:
        if prune:
            say(f"{verb_prefix}retire {record['source_id']} (not in the file)")
        else:
            say(f"keep {record['source_id']}: in D1, not in the file (--prune retires it)")
    for source_id in plan.retired:
        say(f"refused {source_id}: retired in D1 (a retired source_id cannot come back; give it a new id)")
    for source_id in plan.unchanged:
        say(f"unchanged {source_id}")


def _file_definitions(path: Path | None) -> tuple[Path, list[dict]]:
    """The file's definitions as written (checked by the model first): D1 keeps what is in git."""
    path = path or settings().config_path
    load_sources_file(path)
    document = read_sources_document(path)
    if not isinstance(document, dict):  # load_sources_file refuses any other shape
        raise DefinitionError(f"{path}: expected a JSON object with 'sources'")
    return path, list(document["sources"])


def apply_plan(client: OperatorClient, plan: SourcePlan, prune: bool) -> None:
    """Creates, then new versions (each sent with the version read for the plan), then retirements."""
    for definition in plan.create:
        client.create_source(definition, ACTOR)
    for definition, record in plan.update:
        try:
            client.update_source(definition["source_id"], record["version"], definition, ACTOR)
        except OperatorAPIError as error:
            if error.status_code == 409:
                raise UsageError(
                    f"{definition['source_id']}: changed at the Worker while pushing ({error}); "
                    "run `dlt-platform sources diff` and push again"
                ) from None
            raise
    if prune:
        for record in plan.only_in_d1:
            client.retire_source(record["source_id"], ACTOR)


@sources_app.callback(invoke_without_command=True)
def sources(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the configured sources (the sources file); push, pull and diff keep it alike with the Worker."""
    if ctx.invoked_subcommand is None:
        list_configured_sources(as_json)


@sources_app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List the configured sources (the sources file)."""
    list_configured_sources(as_json)


@sources_app.command(rich_help_panel=DEPLOYMENT)
def push(
    file: FileOption = None,
    url: UrlOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change; change nothing.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Retire sources the file no longer holds.")] = False,
) -> None:
    """Apply a sources file to the Worker's D1: create, new versions where changed, retire with --prune."""
    with one_line_errors():
        path, definitions = _file_definitions(file)
        with deployment_client(url) as client:
            plan = plan_push(definitions, client.sources(include_retired=True))
            print_plan(plan, prune, "would " if dry_run else "")
            if plan.retired:
                raise UsageError(f"--file: {path} holds retired sources: {', '.join(plan.retired)}")
            if not dry_run:
                apply_plan(client, plan, prune)
        retired = len(plan.only_in_d1) if prune else 0
        say(
            f"{'dry run: ' if dry_run else ''}{len(plan.create)} created, {len(plan.update)} updated, {retired} "
            f"retired, {len(plan.unchanged)} unchanged ({path} -> {client.base_url})"
        )


@sources_app.command(rich_help_panel=DEPLOYMENT)
def diff(file: FileOption = None, url: UrlOption = None) -> None:
    """What `sources push --prune` would change; exit code 1 when the file and D1 differ."""
    with one_line_errors():
        _path, definitions = _file_definitions(file)
        with deployment_client(url) as client:
            plan = plan_push(definitions, client.sources(include_retired=True))
        print_plan(plan, prune=True, verb_prefix="would ")
    if plan.changes:
        raise typer.Exit(1)


@sources_app.command(rich_help_panel=DEPLOYMENT)
def pull(file: FileOption = None, url: UrlOption = None) -> None:
    """Write the Worker's current definitions (retired ones left out) to a sources file."""
    with one_line_errors():
        path = file or settings().config_path
        with deployment_client(url) as client:
            stored = client.sources()
        definitions = [record["definition"] for record in stored]
        path.write_text(json.dumps({"sources": definitions}, indent=2) + "\n", encoding="utf-8")
        say(f"wrote {len(definitions)} sources from {client.base_url} to {path}")
