"""Warehouse rows shaped into Arrow tables, value by value: the tables dlt's row normalizer would make of them.

dlt hands Arrow tables to the destination as they are (its Arrow path skips the row-by-row normalizer, most of a
load's time), so this module does that normalizer's work for KV rows, by its rules and with its own functions
where it has them (naming, type detection, coercion, row ids):
- nested objects become `parent__child` columns;
- lists become child tables (`orders_kv__items`; scalars in a `value` column, a list in a list as a `list` child),
  each row linked by `_dlt_parent_id`, `_dlt_list_idx` and `_dlt_root_id`, with the id dlt derives from those;
- a new column takes the type of its first value (ISO timestamps detected); a value its column's type cannot
  take goes to dlt's variant column (`amount__v_text`), as the row normalizer does;
- root rows get a random `_dlt_id` and the load's `_dlt_load_id`.

It is the slow lane of the Arrow shaping, for pages with anything new (arrow_pages.py shapes the others column
at a time, from the types this module records). What it cannot reproduce exactly (integers past 64 bits, field
names in dlt's reserved `_dlt`/variant spellings, values landing on a JSON column, schema settings KV sources do
not use) raises CannotShape: the source then hands the rows to dlt's row normalizer. Column order matches the row
path except for variant columns, appended after a page's other columns.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, cast

import pyarrow as pa
from dlt.common.data_types.type_helpers import PY_TYPE_TO_SC_TYPE, coerce_value, py_type_to_sc_type
from dlt.common.json import json as dlt_json
from dlt.common.normalizers.json import helpers as normalize_helpers
from dlt.common.normalizers.json.helpers import get_nested_row_hash
from dlt.common.normalizers.utils import generate_dlt_ids
from dlt.common.schema import Schema
from dlt.common.schema import utils as schema_utils
from dlt.common.schema.typing import TTypeDetections
from dlt.common.time import normalize_timezone
from dlt.common.typing import VARIANT_FIELD_FORMAT

LOAD_ID, ROW_ID = "_dlt_load_id", "_dlt_id"
ROOT_ID, PARENT_ID, LIST_INDEX, VALUE = "_dlt_root_id", "_dlt_parent_id", "_dlt_list_idx", "value"
# The `_dlt_*` columns as dlt's normalizer declares them (its default hints), in root and child tables.
ROOT_ID_COLUMNS = {
    LOAD_ID: {"name": LOAD_ID, "data_type": "text", "nullable": False},
    ROW_ID: {"name": ROW_ID, "data_type": "text", "nullable": False, "unique": True, "row_key": True},
}
CHILD_ID_COLUMNS = {
    ROOT_ID: {"name": ROOT_ID, "data_type": "text", "nullable": False, "root_key": True},
    PARENT_ID: {"name": PARENT_ID, "data_type": "text", "nullable": False, "parent_key": True},
    LIST_INDEX: {"name": LIST_INDEX, "data_type": "bigint", "nullable": False},
    ROW_ID: ROOT_ID_COLUMNS[ROW_ID],
}

ARROW_TYPES = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
# The ISO timestamps whose parse by datetime.fromisoformat is certainly dlt's (other text goes through dlt's own
# coercion, value by value).
_PLAIN_ISO_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_NONE = type(None)


class CannotShape(Exception):
    """Rows this module does not shape exactly as dlt's row normalizer would; they go to that normalizer."""


class ArrowShaper:
    """Shapes pages of rows of one resource into Arrow tables, following the columns the schema already holds
    (earlier runs, earlier pages) and the ones it adds itself."""

    def __init__(self, schema: Schema, root_table: str, declared_columns: Mapping[str, Mapping[str, Any]]) -> None:
        # The relational normalizer's config, as the schema holds it (`max_nesting` unset: no limit).
        normalizer = schema.data_item_normalizer
        normalizer_config = normalizer.get_normalizer_config(schema)
        if schema.settings.get("preferred_types") or normalizer_config.get("max_nesting") is not None:
            raise CannotShape("schema with preferred types or a nesting limit")
        if normalize_helpers.get_root_row_id_type(schema, root_table) != "random":
            raise CannotShape("root row ids that are hashes (upsert, scd2)")
        # A source with root_key=True propagates its root row's id to every child row (`_dlt_root_id`), and no
        # other value: the only propagation handled here.
        propagation = normalizer_config.get("propagation") or {}
        self.propagates_root_id = (
            normalizer_config.get("root_key_propagation") is True
            and not propagation.get("root")
            and all(
                table == root_table and mapping == {ROW_ID: ROOT_ID}
                for table, mapping in (propagation.get("tables") or {}).items()
            )
        )
        self.schema, self.naming, self.root = schema, schema.naming, root_table
        # Whether dlt's normalizer coerces a value of one type into a column of another (it tries those before
        # making a variant column).
        self.can_coerce_type = normalizer.can_coerce_type
        # The detections that type a new column from its first value (ISO timestamps): the schema's settings', else
        # its normalizers', the order in which dlt's Schema takes them.
        normalizers_detections = cast(
            "list[TTypeDetections] | None", schema.to_dict(bump_version=False)["normalizers"].get("detections")
        )
        self.type_detections = schema.settings.get("detections") or normalizers_detections or []
        self.declared = {name: {"name": name, **hint} for name, hint in declared_columns.items()}
        # Columns this shaper typed, per table: it knows them before dlt adds them to the schema.
        self.typed: dict[str, dict[str, dict]] = {}
        self._identifiers: dict[str, str] = {}
        self._joined: dict[tuple[str, ...], str] = {}
        self._names: dict[tuple[str, ...], dict[str, str]] = {}  # field name -> column name, per object path
        self._json_columns: dict[tuple[str, str], bool] = {}
        self._tables: dict[tuple[str, ...], str] = {}
        self._table_identifiers: dict[str, str] = {}
        self.parents: dict[str, str] = {}  # child table -> its parent table, for the child tables this shaper made
        self._hinted: dict[tuple[str, str], dict] = {}

    # --- dlt's naming, cached ---------------------------------------------------------------------------------

    def identifier(self, key: str) -> str:
        name = self._identifiers.get(key)
        if name is None:
            name = (
                normalize_helpers.normalize_identifier(self.schema, self.naming, key)
                if key and not key.isspace()
                else "_empty"
            )
            if name.startswith("_dlt") or "__v_" in name:
                raise CannotShape(f"field name '{key}' uses dlt's reserved spellings")
            self._identifiers[key] = name
        return name

    def join(self, *parts: str) -> str:
        name = self._joined.get(parts)
        if name is None:
            name = self._joined[parts] = self.naming.shorten_fragments(*parts)
        return name

    def column(self, table: str, name: str) -> Mapping[str, Any] | None:
        """The complete column `name` of `table`: typed by this shaper, in the schema, or declared."""
        column: Mapping[str, Any] | None = self.typed.get(table, {}).get(name)
        if column is None:
            stored = self.schema.tables.get(table)
            column = stored["columns"].get(name) if stored else None
            if column is None and table == self.root:
                column = self.declared.get(name)
            if column is not None and not column.get("data_type"):
                column = None
        return column

    def known_column(self, table: str, name: str) -> Mapping[str, Any]:
        """The column of values being placed: typed by then (its first value typed it), else not shaped here."""
        column = self.column(table, name)
        if column is None:
            raise CannotShape(f"{table}.{name}: a column without a type")
        return column

    # --- rows -> per-table rows, as dlt's relational normalizer walks them ---------------------------------------

    def _flatten(self, table: str, row: dict) -> tuple[dict, list[tuple[tuple[str, ...], list]]]:
        """The row's columns (nested objects as `parent__child`) and its lists, each with its path of field names
        (normalized as table names), as dlt's relational normalizer splits them."""
        flat: dict = {}
        lists: list[tuple[tuple[str, ...], list]] = []
        stack: list[tuple[dict, tuple[str, ...]]] = [(row, ())]
        names_by_path = self._names
        while stack:
            current, path = stack.pop()
            names = names_by_path.get(path)
            if names is None:
                names = names_by_path[path] = {}
            for key, value in current.items():
                nested_name = names.get(key)
                if nested_name is None:
                    name = self.identifier(key)
                    nested_name = names[key] = self.join(*path, name) if path else name
                kind = type(value)
                if kind is dict or kind is list:
                    if not self._is_json_column(table, nested_name):
                        if kind is list:
                            lists.append((path + (self.table_identifier(key),), value))
                        else:
                            stack.append((value, path + (self.identifier(key),)))
                        continue
                flat[nested_name] = value
        return flat, lists

    def _is_json_column(self, table: str, name: str) -> bool:
        """Whether the column holds objects whole (declared JSON) instead of flattening them."""
        is_json = self._json_columns.get((table, name))
        if is_json is None:
            column = self.column(table, name)
            is_json = column is not None and column["data_type"] == "json"
            if is_json and (table != self.root or name not in self.declared):
                raise CannotShape(f"a value lands on the JSON column {table}.{name}")
            self._json_columns[(table, name)] = is_json
        return is_json

    def shape(self, rows: list[dict], load_id: str) -> dict[str, pa.Table]:
        """The Arrow tables of the rows: their root table's, then the child tables their lists make (a parent
        table before its children), by table name."""
        root_rows: list[dict] = []
        child_rows: dict[tuple[str, ...], list[dict]] = {}
        for row, row_id in zip(rows, generate_dlt_ids(len(rows)), strict=True):
            flat, lists = self._flatten(self.root, row)
            flat[LOAD_ID] = load_id
            flat[ROW_ID] = row_id
            root_rows.append(flat)
            if lists:
                self._child_rows((self.root,), lists, row_id, row_id, child_rows)
        shaped = {self.root: self._arrow_table(self.root, root_rows)}
        for parts, table_rows in child_rows.items():
            shaped[self.table_name(parts)] = self._arrow_table(self.table_name(parts), table_rows)
        return shaped

    def _child_rows(
        self,
        parent_parts: tuple[str, ...],
        lists: list[tuple[tuple[str, ...], list]],
        parent_id: str,
        root_id: str,
        out: dict[tuple[str, ...], list[dict]],
    ) -> None:
        """The rows of the child tables a row's lists make, as dlt's relational normalizer makes them: an object
        item is flattened, a scalar becomes `value`, a list becomes the only item of a `list` child; every row
        links to its root, its parent and its position, with the id dlt derives from those."""
        if not self.propagates_root_id:
            raise CannotShape("child tables of a source without root_key")
        for path, items in lists:
            if not items:  # an empty list makes no rows, and no table
                continue
            parts = parent_parts + path
            table = self.table_name(parts)
            table_rows = out.get(parts)
            if table_rows is None:
                table_rows = out[parts] = []
                if table not in self.parents:
                    self.parents[table] = self.table_name(parent_parts)
                    self.typed.setdefault(table, {}).update(CHILD_ID_COLUMNS)
            for index, item in enumerate(items):
                kind = type(item)
                if kind is dict:
                    flat, nested = self._flatten(table, item)
                elif kind is list:
                    flat, nested = {}, [(("list",), item)]
                else:
                    flat, nested = {VALUE: item}, []
                row_id = get_nested_row_hash(parent_id, table, index)
                flat[ROOT_ID] = root_id
                flat[PARENT_ID] = parent_id
                flat[LIST_INDEX] = index
                flat[ROW_ID] = row_id
                table_rows.append(flat)
                if nested:
                    self._child_rows(parts, nested, row_id, root_id, out)

    def table_name(self, parts: tuple[str, ...]) -> str:
        name = self._tables.get(parts)
        if name is None:
            name = self._tables[parts] = self.naming.shorten_fragments(*parts) if len(parts) > 1 else parts[0]
        return name

    def table_identifier(self, key: str) -> str:
        name = self._table_identifiers.get(key)
        if name is None:
            name = normalize_helpers.normalize_table_identifier(self.schema, self.naming, key)
            if name.startswith("_dlt") or "__v_" in name:
                raise CannotShape(f"field name '{key}' uses dlt's reserved spellings")
            self._table_identifiers[key] = name
        return name

    # --- per-table rows -> typed Arrow columns -------------------------------------------------------------------

    def _arrow_table(self, table: str, rows: list[dict]) -> pa.Table:
        names = dict.fromkeys(self.declared) if table == self.root else {}
        for row in rows:
            names.update(dict.fromkeys(row))
        columns: dict[str, pa.Array] = {}
        variants: dict[str, list] = {}
        for name in names:
            values = [row.get(name) for row in rows]
            if (table != self.root or name not in self.declared) and all(value is None for value in values):
                continue  # dlt adds no column for a field that is always null (declared ones exist from the start)
            typed, spill = self._typed_values(table, name, values)
            columns[name] = typed
            for variant, variant_values in spill.items():
                variants[variant] = variant_values
        for name, values in variants.items():
            columns[name] = self.array(table, name, values)
        return pa.table(columns)

    def _typed_values(self, table: str, name: str, values: list) -> tuple[pa.Array, dict[str, list]]:
        column = self.column(table, name)
        if column is None:
            first = next(value for value in values if value is not None)
            column = self._new_column(table, name, first, variant=False)
        data_type = column["data_type"]
        kinds = set(map(type, values))
        kinds.discard(_NONE)
        if data_type == "json":  # a declared JSON column (cf_kv_metadata): JSON text, as dlt's writers store it
            if not kinds <= {dict, list}:
                raise CannotShape(f"{table}.{name}: a JSON column holding scalars")
            return pa.array([None if value is None else dlt_json.dumps(value) for value in values], pa.string()), {}
        kinds_types = {PY_TYPE_TO_SC_TYPE.get(kind) for kind in kinds}
        if kinds_types == {data_type} or (
            data_type == "timestamp"
            and kinds == {str}
            and all(_PLAIN_ISO_TIMESTAMP.fullmatch(v) for v in values if v is not None)
        ):
            return self.array(table, name, values), {}
        # Mixed or clashing types: dlt's per-value rules (coercion, else a variant column).
        placed: list = [None] * len(values)
        spill: dict[str, list] = {}
        for index, value in enumerate(values):
            if value is None:
                continue
            target, coerced = self._place(table, name, value)
            if target == name:
                placed[index] = coerced
            else:
                spill.setdefault(target, [None] * len(values))[index] = coerced
        return self.array(table, name, placed), spill

    def _place(self, table: str, name: str, value: Any) -> tuple[str, Any]:
        """Where dlt's row normalizer puts a value of a column, and what it makes of it (JsonLItemsNormalizer)."""
        column = self.known_column(table, name)
        py_type = PY_TYPE_TO_SC_TYPE.get(type(value))
        data_type = column["data_type"]
        if py_type == data_type:
            return name, value
        if py_type and self.can_coerce_type(data_type, py_type):
            try:
                return name, coerce_value(data_type, py_type, value)
            except (ValueError, SyntaxError):
                pass
        try:
            coerce_value(data_type, py_type_to_sc_type(type(value)), value)
        except (ValueError, SyntaxError):
            variant = self.join(name, VARIANT_FIELD_FORMAT % py_type_to_sc_type(type(value)))
            variant_column = self.column(table, variant) or self._new_column(table, variant, value, variant=True)
            try:
                coerced = coerce_value(variant_column["data_type"], py_type_to_sc_type(type(value)), value)
            except (ValueError, SyntaxError):
                raise CannotShape(f"{table}.{name}: a value neither its column nor its variant takes") from None
            return variant, coerced
        return name, coerce_value(data_type, py_type_to_sc_type(type(value)), value)

    def _new_column(self, table: str, name: str, value: Any, variant: bool) -> dict:
        py_type = type(value)
        data_type = schema_utils.autodetect_sc_type(self.type_detections, py_type, value) or py_type_to_sc_type(py_type)
        if data_type not in ARROW_TYPES:
            raise CannotShape(f"{table}.{name}: values of type {data_type}")
        column: dict = {"name": name, "data_type": data_type, "nullable": True}
        if variant:
            column["variant"] = True
            column["description"] = f"Variant of column {name} generated by dlt"
        self.typed.setdefault(table, {})[name] = column
        return column

    def array(self, table: str, name: str, values: list) -> pa.Array:
        data_type = self.known_column(table, name)["data_type"]
        if data_type == "timestamp":
            # Arrow stores an aware datetime as its UTC instant and a naive one as UTC, as dlt's normalize_timezone
            # does; text is parsed first.
            if any(type(value) is not dt.datetime for value in values if value is not None):
                values = [
                    value
                    if value is None or type(value) is dt.datetime
                    else normalize_timezone(_timestamp(value), True)
                    for value in values
                ]
        elif data_type == "json":  # only declared JSON columns are written, by _typed_values
            raise CannotShape(f"{table}.{name}: a value for a JSON column")
        try:
            return pa.array(values, type=ARROW_TYPES[data_type])
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
            raise CannotShape(f"{table}.{name}: {error}") from None

    # --- dlt hints -----------------------------------------------------------------------------------------------

    def column_hints(self, table: str, arrow_table: pa.Table) -> dict[str, Any]:
        """dlt column hints its Arrow types cannot carry and dlt does not hold yet: the root's `_dlt_*` columns as
        the normalizer declares them, and variant columns. (dlt validates hints item by item: only new ones go; a
        child table's `_dlt_*` columns are declared with the table, see child_table_hints.)"""
        typed = self.typed.get(table, {})
        is_root = table == self.root
        hints = {}
        for name in arrow_table.column_names:
            if (table, name) not in self._hinted and (
                (is_root and name in ROOT_ID_COLUMNS) or typed.get(name, {}).get("variant")
            ):
                hints[name] = self._hinted[(table, name)] = dict(
                    (ROOT_ID_COLUMNS.get(name) if is_root else None) or typed[name]
                )
        return hints


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if _PLAIN_ISO_TIMESTAMP.fullmatch(value):
        return dt.datetime.fromisoformat(value)
    return coerce_value("timestamp", "text", value)
