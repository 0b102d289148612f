"""How the CLI prints: listings as a table in a wide enough terminal, else as aligned plain text that keeps every
value whole (piped output and narrow terminals), or as JSON with `--json`. Notes about how a command ran go to
stderr so stdout stays what the command lists."""

from __future__ import annotations

import json
from collections.abc import Sequence

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

console = Console()
# An error is one line whatever the terminal's width (scripts and tests read it whole).
errors = Console(stderr=True, soft_wrap=True)


def say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def note(text: str) -> None:
    """One line on stderr about how the command runs (e.g. which KV it reads)."""
    errors.print(text, markup=False, highlight=False, soft_wrap=True)


def print_json(document: object) -> None:
    typer.echo(json.dumps(document, default=str, indent=2))


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def print_listing(
    columns: Sequence[str],
    rows: Sequence[dict],
    as_json: bool = False,
    title: str | None = None,
    document: object = None,
) -> None:
    """`rows` are dicts keyed by `columns`; `--json` prints `document` (default: the rows) instead."""
    if as_json:
        print_json(rows if document is None else document)
        return
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    table = Table(*columns, title=title)
    for row in cells:
        table.add_row(*(Text(text) for text in row))
    natural = Measurement.get(console, console.options.update(width=10**6), table).maximum
    if console.is_terminal and natural <= console.width:
        console.print(table)
        return
    # Plain columns separated by two spaces: nothing is cut, `cut`/`awk` and `grep` find whole ids.
    if title:
        say(title)
    widths = [max(len(text) for text in column) for column in zip(columns, *cells, strict=True)]
    for row in [list(columns), *cells]:
        line = "  ".join(text.ljust(width) for text, width in zip(row[:-1], widths, strict=False)) + (
            "  " if len(row) > 1 else ""
        )
        say((line + row[-1]).rstrip())
