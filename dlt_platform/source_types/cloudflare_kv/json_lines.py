"""A shaped root table as a JSON lines load file: how the Arrow shaping reaches BigQuery.

BigQuery loads a JSON column (cf_kv_metadata) only from JSON lines, CSV or Avro, and dlt writes Arrow tables as
parquet (or, asked for JSON lines, turns them into Python rows first, with a JSON column's text as a string). So the
root table of each batch is written here, a column at a time with Arrow's compute functions, and handed to dlt as
a file to import (dlt.mark.with_file_import): a JSON column's text goes in as it is, so BigQuery stores the object,
as it does from the row normalizer's JSON lines. The child tables, which hold no JSON column, stay Arrow tables
(parquet). A run's batches go to one file (JsonLinesFile).
"""

from __future__ import annotations

import gzip
from collections.abc import Collection
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc

# Characters JSON strings must escape besides `"` and `\`: rare in values, so a column holding any is encoded value
# by value (orjson) instead of by Arrow's replace.
_CONTROL = r"[\x00-\x1f]"


def _json_texts(array: pa.Array, is_json: bool) -> pa.Array:
    """Each value of the column as JSON text (null as `null`)."""
    kind = array.type
    if is_json:
        texts = array
    elif pa.types.is_string(kind):
        if pc.any(pc.match_substring_regex(array, _CONTROL)).as_py():
            encoded = [None if value is None else orjson.dumps(value).decode() for value in array.to_pylist()]
            texts = pa.array(encoded, pa.string())
        else:
            escaped = pc.replace_substring(pc.replace_substring(array, "\\", "\\\\"), '"', '\\"')
            texts = pc.binary_join_element_wise('"', escaped, '"', "")
    elif pa.types.is_timestamp(kind):
        # The instant in UTC, with its microseconds (BigQuery and DuckDB read this form).
        utc = array.cast(pa.timestamp("us", tz="UTC"))
        seconds = pc.strftime(utc, format="%Y-%m-%dT%H:%M:%S", locale="C")
        texts = pc.binary_join_element_wise('"', seconds, '+00:00"', "")
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        texts = array.cast(pa.string())
    elif pa.types.is_floating(kind):
        if pc.all(pc.is_finite(array)).as_py() is False:
            raise ValueError("a double that JSON cannot hold (NaN or infinity)")
        texts = array.cast(pa.string())
    else:
        raise ValueError(f"no JSON lines form for Arrow type {kind}")
    return pc.fill_null(texts, "null")


def json_lines(table: pa.Table, json_columns: Collection[str]) -> bytes:
    """The table's rows as JSON lines: one object per row, every column named (nulls as null)."""
    if not table.num_rows:
        return b""
    parts: list = []
    for index, (name, column) in enumerate(zip(table.column_names, table.columns, strict=True)):
        key = orjson.dumps(name).decode()
        parts.append(("{" if index == 0 else ",") + key + ":")
        parts.append(_json_texts(column.combine_chunks(), name in json_columns))
    parts.append("}")
    lines = pc.binary_join_element_wise(*parts, "")
    return ("\n".join(lines.to_pylist()) + "\n").encode()


class JsonLinesFile:
    """The load file a run's root table batches are appended to, handed to dlt once, when the run has read
    everything: one load job per table and run, as from the row normalizer's files (BigQuery allows 1,500 load jobs
    per table per day), and memory that does not grow with the run (one upload of one file). Gzipped when
    `compress` (BigQuery reads either; the emulator only plain text), at level 1: the file is uploaded once, and
    higher levels cost more CPU than they save bytes."""

    def __init__(self, path: Path, compress: bool) -> None:
        self.path, self.rows = path, 0
        self._schemas: list[pa.Schema] = []
        self._file = gzip.open(path, "wb", compresslevel=1) if compress else path.open("wb")

    def write(self, table: pa.Table, json_columns: Collection[str]) -> None:
        self._file.write(json_lines(table, json_columns))
        self.rows += table.num_rows
        if not self._schemas or table.schema != self._schemas[-1]:
            self._schemas.append(table.schema)

    def close(self) -> pa.Schema:
        """Closes the file; returns the columns of all its rows (a later batch's new columns after the earlier)."""
        self._file.close()
        return pa.unify_schemas(self._schemas)
