"""How the Arrow shaping hands dlt the child tables it makes (`orders_kv__items`), which dlt's extract step does
not do by itself: it writes Arrow tables to the tables a resource names, with that resource's hints.

- A child table is declared on the resource as a table variant holding only what dlt's normalizer would declare:
  its parent and its `_dlt_*` columns. (dlt's public way to add a variant starts from a copy of the resource's
  hints: the root's columns, primary key and write disposition, none of which a child table has.)
- dlt's extract step sums its file metrics by the resource of each table written, and a child table has no
  resource of its own: it counts under its root table's, as the row normalizer's child rows do.
Neither has a public way in dlt 1.31 (docs/benchmarks.md, "dlt internals the KV Arrow path still needs", names
the upstream change that would retire each; pyproject.toml allows only the dlt release they were tested with).
"""

from __future__ import annotations

import dlt
import dlt.extract.extract as dlt_extract
from dlt.sources import DltResource

_root_tables: dict[str, str] = {}  # child table -> its root table, for every child table declared here
_aggregate_job_metrics = dlt_extract.aggregate_job_metrics


def _aggregate_by_root_table(job_metrics, key):
    return _aggregate_job_metrics(job_metrics, lambda job_key: key(_root_tables.get(job_key, job_key)))


dlt_extract.aggregate_job_metrics = _aggregate_by_root_table


def declare_child_table(resource: DltResource, table: str, parent: str, root: str, id_columns: dict) -> None:
    resource._hints_variants[table] = dlt.mark.make_hints(
        table_name=table, parent_table_name=parent, columns=id_columns
    )
    _root_tables[table] = root


def child_table_item(table: str, arrow_table, new_column_hints: dict):
    """The item that writes `arrow_table` to the declared child `table`, adding columns hints it needs."""
    if new_column_hints:
        hints = dlt.mark.make_hints(table_name=table, columns=new_column_hints)
        return dlt.mark.with_hints(arrow_table, hints, create_table_variant=True)
    return dlt.mark.with_table_name(arrow_table, table)
