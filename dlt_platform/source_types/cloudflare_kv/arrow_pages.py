"""A page of KV records shaped into Arrow tables column by column: the fast lane of arrow_tables.py.

The object values of a page are parsed in one go by Arrow's JSON reader (a struct column per field, a list column
per list), then flattened into the root table's columns and exploded into child tables with Arrow's compute
functions; only the child rows' ids (dlt hashes each from its parent's id, table and position) and timestamp text
are made value by value. The result is the tables ArrowShaper.shape makes of the same records, row for row.

It takes only pages it shapes exactly, and leaves the rest (NotVectorized) to ArrowShaper's value-by-value
shaping, which follows dlt's rules for everything new:
- every column and child table must be known already (in the schema, or typed by an earlier page): a new column's
  type is its first value's, which a reader typing a whole page at once cannot tell;
- each field's values must have the type of its column (Arrow's reader refuses a field whose type changes within
  the page; ints into a double column are widened, as dlt coerces them); a value that needs dlt's coercion or a
  variant column sends the page to the value-by-value shaping;
- values must be read as orjson reads them (the two refuse the same raw control characters in strings and the
  same repeated fields), one line each, with no field named like an audit column (those are renamed, object by
  object); a value spanning lines or a line holding two documents sends the page to the value-by-value shaping.
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from dlt.common.json import json as dlt_json
from dlt.common.normalizers.json.helpers import DLT_ID_LENGTH_BYTES
from dlt.common.normalizers.utils import generate_dlt_ids

from dlt_platform.source_types.cloudflare_kv.arrow_tables import (
    ARROW_TYPES,
    LIST_INDEX,
    LOAD_ID,
    PARENT_ID,
    ROOT_ID,
    ROW_ID,
    VALUE,
    ArrowShaper,
    CannotShape,
)
from dlt_platform.source_types.cloudflare_kv.rows import AUDIT_COLUMNS, AUDIT_SET, fetched_at_time, parsed_value
from dlt_platform.source_types.columns import column_name

# The ISO timestamps Arrow's cast reads as dlt does (with their zone; dlt reads a zoneless one as UTC, Arrow
# refuses it).
_ZONED_ISO_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_ARROW_KIND = {
    "bigint": pa.types.is_integer,
    "double": pa.types.is_floating,
    "text": pa.types.is_string,
    "bool": pa.types.is_boolean,
    "timestamp": pa.types.is_string,
}


class NotVectorized(Exception):
    """A page this module does not shape exactly: ArrowShaper.shape shapes it value by value."""


def _without_timestamps(arrow_type: pa.DataType) -> pa.DataType:
    """The reader's inferred type with text kept as text: it reads ISO-looking strings (dates too) as
    timestamps, while dlt decides a column's type itself."""
    if pa.types.is_timestamp(arrow_type):
        return pa.string()
    if pa.types.is_struct(arrow_type):
        return pa.struct([field.with_type(_without_timestamps(field.type)) for field in arrow_type])
    if pa.types.is_list(arrow_type):
        return pa.list_(_without_timestamps(arrow_type.value_type))
    return arrow_type


def _read_objects(blob: bytes, count: int, schema: pa.Schema | None) -> pa.Table:
    read = pa_json.ReadOptions(block_size=len(blob) + 1, use_threads=False)
    try:
        parse = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer") if schema else None
        table = pa_json.read_json(pa.BufferReader(blob), read_options=read, parse_options=parse)
    except pa.ArrowInvalid as error:
        raise NotVectorized(f"Arrow's JSON reader: {str(error)[:120]}") from None
    if table.num_rows != count:
        raise NotVectorized("a value holding more than one JSON document")
    return table


def _child_ids(parent_ids: list[str], table: str, positions: list[int]) -> pa.Array:
    """dlt's id of each child row (helpers.get_nested_row_hash: the base64 of a 10-byte hash, unpadded), for a whole
    column: the digests, each padded to 12 bytes, are base64-encoded at once, 16 characters each, of which the
    first 14 are the digest's own encoding."""
    assert DLT_ID_LENGTH_BYTES == 10
    shake = hashlib.shake_128
    middle = f"_{table}_"
    padded = b"".join(
        [
            shake(f"{parent}{middle}{index}".encode()).digest(10) + b"\0\0"
            for parent, index in zip(parent_ids, positions, strict=True)
        ]
    )
    encoded = base64.b64encode(padded).decode("ascii")
    return pa.array([encoded[start : start + 14] for start in range(0, len(encoded), 16)], pa.string())


def _fetched_at_column(records: list[dict]) -> pa.Array:
    times = [record["fetched_at"] for record in records]
    first = times[0] if times else None
    if times.count(first) == len(times):  # a page read at once: one time
        return pa.array([fetched_at_time(first)], ARROW_TYPES["timestamp"]).take(pa.array([0] * len(times)))
    return pa.array([fetched_at_time(time) for time in times], ARROW_TYPES["timestamp"])


class PageShaper:
    """Shapes pages of records into the tables of an ArrowShaper (same columns, types and caches)."""

    def __init__(self, shaper: ArrowShaper, namespace_id: str, namespace_title: str) -> None:
        self.shaper = shaper
        self.namespace_id, self.namespace_title = namespace_id, namespace_title
        self._schema: pa.Schema | None = None  # the reader's types of the last page, text kept as text

    def shape(self, records: list[dict], load_id: str) -> dict[str, pa.Table]:
        texts = [record["value"] for record in records]
        encodings = [record["value_encoding"] for record in records]
        is_object = [encoding == "text" and text[:1] == "{" for text, encoding in zip(texts, encodings, strict=True)]
        blob = "\n".join([text if obj else "{}" for text, obj in zip(texts, is_object, strict=True)]).encode()
        if blob.count(b"\n") != len(records) - 1:
            raise NotVectorized("a value on several lines")
        values = self._read(blob, len(records))
        fields = [field.name for field in values.schema]
        if any(column_name(field) in AUDIT_SET for field in fields):
            raise NotVectorized("a field named like an audit column")
        row_ids = pa.array(generate_dlt_ids(len(records)), pa.string())
        tables: dict[str, dict[str, pa.Array]] = {}
        root = self.shaper.root
        columns = tables[root] = self._audit_columns(records, texts, encodings, is_object)
        self._flatten(root, (root,), values.columns, fields, (), columns, tables, row_ids, row_ids)
        columns[LOAD_ID] = pa.array([load_id] * len(records), pa.string())
        columns[ROW_ID] = row_ids
        return {name: pa.table(table_columns) for name, table_columns in tables.items()}

    def _read(self, blob: bytes, count: int) -> pa.Table:
        try:
            table = _read_objects(blob, count, self._schema)
        except NotVectorized:
            if self._schema is None:
                raise
            self._schema = None  # the last page's types may not be this one's: let the reader type it
            table = _read_objects(blob, count, None)
        schema = pa.schema([field.with_type(_without_timestamps(field.type)) for field in table.schema])
        if schema != table.schema:  # the reader made timestamps of some text: read the page again as text
            table = _read_objects(blob, count, schema)
        self._schema = schema
        return table

    def _audit_columns(
        self, records: list[dict], texts: list[str], encodings: list[str], is_object: list[bool]
    ) -> dict[str, pa.Array]:
        count = len(records)
        is_json = [obj or self._is_json_not_object(record) for record, obj in zip(records, is_object, strict=True)]
        metadata = [record.get("metadata") for record in records]
        if any(value is not None and type(value) not in (dict, list) for value in metadata):
            raise NotVectorized("metadata that is not a JSON object or array")
        columns = {
            "cf_kv_key": pa.array([record["key"] for record in records], pa.string()),
            "cf_kv_namespace_id": pa.array([self.namespace_id] * count, pa.string()),
            "cf_kv_namespace_title": pa.array([self.namespace_title] * count, pa.string()),
            "cf_kv_metadata": pa.array(
                [None if value is None else dlt_json.dumps(value) for value in metadata], pa.string()
            ),
            "cf_kv_expiration": pa.array([record.get("expiration") for record in records], pa.int64()),
            "cf_kv_fetched_at": _fetched_at_column(records),
            "cf_kv_value_is_json": pa.array(is_json, pa.bool_()),
            "cf_kv_value_raw": pa.array(texts, pa.string()),
            "cf_kv_value_encoding": pa.array(encodings, pa.string()),
        }
        assert list(columns) == list(AUDIT_COLUMNS)
        return columns

    @staticmethod
    def _is_json_not_object(record: dict) -> bool:
        parsed, is_json = parsed_value(record)
        if type(parsed) is dict:  # an object the `{` test missed (leading whitespace)
            raise NotVectorized("an object value starting with whitespace")
        return is_json

    # --- struct fields -> columns, list fields -> child tables ----------------------------------------------------

    def _flatten(
        self,
        table: str,
        parts: tuple[str, ...],
        arrays: list,
        fields: list[str],
        path: tuple[str, ...],
        columns: dict[str, pa.Array],
        tables: dict,
        row_ids: pa.Array,
        root_ids: pa.Array,
    ) -> None:
        """Adds the columns of `arrays` (the fields of objects at `path` in rows of `table`) to `columns`, and the
        child tables of their lists to `tables`."""
        shaper = self.shaper
        for field, array in zip(fields, arrays, strict=True):
            if isinstance(array, pa.ChunkedArray):
                array = array.combine_chunks()
            arrow_type = array.type
            if pa.types.is_struct(arrow_type):
                nested = [array.field(i) for i in range(arrow_type.num_fields)]
                if array.null_count:  # a null object has null fields
                    nested = [pc.if_else(array.is_valid(), child, pa.nulls(len(array), child.type)) for child in nested]
                self._flatten(
                    table,
                    parts,
                    nested,
                    [f.name for f in arrow_type],
                    path + (shaper.identifier(field),),
                    columns,
                    tables,
                    row_ids,
                    root_ids,
                )
                continue
            if pa.types.is_list(arrow_type):
                self._explode(table, parts + path + (shaper.table_identifier(field),), array, tables, row_ids, root_ids)
                continue
            name = shaper.join(*path, shaper.identifier(field)) if path else shaper.identifier(field)
            if name in columns:
                raise NotVectorized(f"two fields make the column {table}.{name}")
            column = self._typed(table, name, array)
            if column is not None:
                columns[name] = column

    def _typed(self, table: str, name: str, array: pa.Array) -> pa.Array | None:
        shaper = self.shaper
        known = shaper.column(table, name)
        if pa.types.is_null(array.type):
            if known is None or known["data_type"] == "json":
                return None
            return pa.nulls(len(array), ARROW_TYPES[known["data_type"]])
        if known is None:
            raise NotVectorized(f"a new column {table}.{name}")
        data_type = known["data_type"]
        kind = _ARROW_KIND.get(data_type)
        if data_type == "double" and pa.types.is_integer(array.type):
            return array.cast(pa.float64())
        if kind is None or not kind(array.type):
            raise NotVectorized(f"{table}.{name}: {array.type} values for a {data_type} column")
        if data_type == "timestamp":
            if pc.all(pc.match_substring_regex(array, _ZONED_ISO_TIMESTAMP)).as_py() is not False:
                return array.cast(ARROW_TYPES["timestamp"])
            try:
                return shaper.array(table, name, array.to_pylist())
            except (ValueError, SyntaxError, CannotShape):
                raise NotVectorized(f"{table}.{name}: text that is not a timestamp") from None
        return array.cast(ARROW_TYPES[data_type])

    def _explode(
        self,
        parent: str,
        parts: tuple[str, ...],
        lists: pa.ListArray,
        tables: dict,
        parent_ids: pa.Array,
        root_ids: pa.Array,
    ) -> None:
        """The child table `parts` of a list column: a row per item, linked to its root, parent and position."""
        shaper = self.shaper
        table = shaper.table_name(parts)
        items = lists.flatten()
        if not len(items):  # empty or null lists only: no rows, and no table
            return
        known_parent = shaper.parents.get(table) or (shaper.schema.tables.get(table) or {}).get("parent")
        if shaper.column(table, ROW_ID) is None or known_parent != parent:
            raise NotVectorized(f"a new child table {table}")
        shaper.parents[table] = parent
        if table in tables:
            raise NotVectorized(f"the child table {table} reached twice")
        parents = pc.list_parent_indices(lists)
        offsets = lists.offsets.to_numpy()
        positions = np.arange(offsets[0], offsets[0] + len(items)) - offsets[parents.to_numpy()]
        child_parent_ids = parent_ids.take(parents)
        child_root_ids = root_ids.take(parents)
        row_ids = _child_ids(child_parent_ids.to_pylist(), table, positions.tolist())
        columns = tables[table] = {}
        item_type = items.type
        if pa.types.is_struct(item_type):
            if items.null_count:
                raise NotVectorized(f"{table}: null items in a list of objects")
            nested = [items.field(i) for i in range(item_type.num_fields)]
            self._flatten(
                table, parts, nested, [f.name for f in item_type], (), columns, tables, row_ids, child_root_ids
            )
        elif pa.types.is_list(item_type):  # a list of lists: each inner list is the only item of a `list` child
            self._explode(table, parts + ("list",), items, tables, row_ids, child_root_ids)
        else:
            column = self._typed(table, VALUE, items)
            if column is not None:
                columns[VALUE] = column
        columns[ROOT_ID] = child_root_ids
        columns[PARENT_ID] = child_parent_ids
        columns[LIST_INDEX] = pa.array(positions, pa.int64())
        columns[ROW_ID] = row_ids
