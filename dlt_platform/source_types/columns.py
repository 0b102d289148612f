"""A JSON object's fields as row columns next to a source's audit columns, without ever overwriting one.

A field whose name, once normalised to a column name as dlt will, equals an audit column is kept under a
prefix (`value_<name>` for KV, `body_<name>` for webhooks; the prefix doubled if that is taken too): it never
overwrites an audit column and is never dropped.
"""

from __future__ import annotations

import functools

from dlt.common.normalizers.naming.snake_case import NamingConvention

_naming = NamingConvention()


@functools.lru_cache(maxsize=65536)
def column_name(field: str) -> str:
    """The column dlt will make of a field name (bounded cache: values may use ids as field names)."""
    return _naming.normalize_identifier(field)


def expand_fields(parsed: dict, reserved: frozenset[str], collision_prefix: str) -> dict:
    row: dict = {}
    taken: set[str] | None = None
    for field, value in parsed.items():
        name = field
        if column_name(field) in reserved:
            # Rare: computed only when a field collides. Skip names the object itself already uses.
            taken = taken or {column_name(other) for other in parsed}
            name = collision_prefix + field
            while column_name(name) in reserved or column_name(name) in taken:
                name = collision_prefix + name
            taken.add(column_name(name))
        row[name] = value
    return row
