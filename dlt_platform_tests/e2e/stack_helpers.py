"""What the end-to-end tests do to and read from a local stack, in one place: query its DuckDB warehouse, change
its local D1 as an application would, define a fresh source, SIGKILL its Dagster."""

from __future__ import annotations

import os
import signal
import subprocess

import psutil

from dlt_platform.duckdb_warehouse import read_connection
from dlt_platform.settings import PROJECT_ROOT


def warehouse(stack, sql: str) -> list[tuple]:
    """Rows of `sql` on the stack's DuckDB warehouse (a reader's turn, as a person's DuckDB shell would take)."""
    with read_connection(stack.paths.data_dir / "warehouse.duckdb") as connection:
        return connection.execute(sql).fetchall()


def d1_execute(stack, sql: str) -> None:
    """SQL on the stack's local D1 (the Worker's binding DB), as an application would change its data."""
    path = stack.paths.state_dir / "d1_change.sql"
    path.write_text(sql)
    done = subprocess.run([str(PROJECT_ROOT / "node_modules" / ".bin" / "wrangler"), "d1", "execute", "DB", "--local",
                           "--persist-to", str(stack.paths.wrangler_state), "--file", str(path), "--yes"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def new_definition(source_id: str, dataset: str = "source_fresh", **changes) -> dict:
    """A KV source over the sample vendors namespace, into a table of its own: created by a test (or an agent
    through /mcp), run at once. `changes` replace top-level fields."""
    return {
        "source_id": source_id,
        "source_type": "cloudflare_kv",
        "description": "Created by the end-to-end test and run at once.",
        "destination": {"type": "duckdb", "dataset": dataset, "table": f"{source_id}_t",
                        "write_disposition": "replace"},
        "extract": {"namespace_id": "VENDOR_KV_NAMESPACE_ID", "namespace_title": "VENDOR_KV", "transport": "worker"},
        **changes,
    }


def sigkill_dagster(stack) -> int:
    """SIGKILL every process of the local Dagster (webserver, daemon, code servers, run workers) at once."""
    process = stack.supervisor.release("dagster")
    root = psutil.Process(process.pid)
    tree = [root, *root.children(recursive=True)]
    for member in tree:
        try:
            os.kill(member.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)
    psutil.wait_procs(tree, timeout=30)
    return len(tree)
