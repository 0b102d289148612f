"""`dlt-platform` (alias `dlt-kv`): one command line, its sub-commands grouped by who uses them.

- explore.py: look at KV namespaces, keys and values before loading (`namespaces`, `sources`, `keys`, `sample`,
  `profile`);
- load.py: load a source from a terminal (`load`);
- local_stack.py: run the platform on this machine (`up`, `serve`);
- sources.py: list the configured sources; keep a sources file and the Worker's D1 alike (`sources push`,
  `pull`, `diff`);
- deployment.py: operate a deployed orchestrator (`check-deployment`, `verify-deployment`) and regenerate what
  the Worker reads from the Python side (`schema`).

Source types add their own groups (source_types/<type>/cli.py, named by the type's `cli_module`).
app.py holds what they share: the Typer app, settings, one-line errors; output.py prints listings.

Commands import dlt, DuckDB and Arrow (through loads.py and the sources) inside their bodies, not at the top of
their modules: every command, `--help` and `serve` included, would otherwise pay for them on each start (about
1 s of CPU), and most commands (operating a deployment, the local stack, sources) never load anything.
"""

import importlib

# Imported for the commands they register, in the order `--help` lists their groups; then each source type's own
# (its `cli_module`, e.g. `dlt-platform d1 tables`).
from dlt_platform.cli import deployment, explore, load, local_stack, sources  # noqa: E402, F401, I001
from dlt_platform.cli.app import app
from dlt_platform.source_types import SOURCE_TYPES

for _source_type in SOURCE_TYPES.values():
    if _source_type.cli_module:
        importlib.import_module(_source_type.cli_module)

__all__ = ["app"]
