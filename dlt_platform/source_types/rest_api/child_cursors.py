"""Incremental cursors kept per parent for child resources.

dlt's incremental keeps one cursor per resource: for a child resource (comments of each issue) that is the
latest value across all parents, so a parent seen for the first time, or one whose children lag behind the
others, would be asked only for children newer than some other parent's. Here a child resource with
`endpoint.incremental` keeps one cursor per parent item instead, in the source's dlt state (saved with the load,
like dlt's own cursors):

- the child's `start_param` is sent as `{resources.<parent>.<CURSOR_FIELD>}`, a dlt placeholder, and a step in
  front of the child (it sees each parent item before dlt builds the child's requests) hands it a copy of the
  parent item carrying that parent's cursor (or `initial_value`);
- a step after the child records the largest `cursor_path` value of the child items of each parent: the
  parent's key field reaches the child items through dlt's `include_from_parent` (added when the definition
  does not ask for it, and then removed from the rows again).

Pagination and requests stay dlt's; the parent's own rows are untouched.
"""

from __future__ import annotations

import dlt
from dlt.sources.rest_api.config_setup import make_parent_key_name

from dlt_platform.source_types.rest_api.definition import (
    RestApiSourceDefinition,
    RestIncremental,
    RestResource,
    parent_fields,
)

CURSOR_FIELD = "_rest_api_parent_cursor"
STATE_KEY = "rest_api_child_cursors"


def _value_at(item: dict, path: str):
    value: object = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class ParentCursors:
    """The cursors of one child resource, by the value of its parent's key field."""

    def __init__(self, child: RestResource, incremental: RestIncremental, parent: str, parent_key_field: str) -> None:
        self.child, self.incremental = child.name, incremental
        self.parent_key_field = parent_key_field
        self.key_column = make_parent_key_name(parent, parent_key_field)  # where dlt puts it in child items
        self.drop_key_column = parent_key_field not in (child.include_from_parent or [])

    def _cursors(self) -> dict:
        return dlt.current.source_state().setdefault(STATE_KEY, {}).setdefault(self.child, {})

    def with_parent_cursor(self, parent_item: dict) -> dict:
        start = self._cursors().get(str(_value_at(parent_item, self.parent_key_field)), self.incremental.initial_value)
        return {**parent_item, CURSOR_FIELD: start}

    def record(self, child_item: dict) -> dict:
        key = child_item.pop(self.key_column) if self.drop_key_column else child_item.get(self.key_column)
        value = _value_at(child_item, self.incremental.cursor_path)
        if value is not None:
            cursors = self._cursors()
            if str(key) not in cursors or value > cursors[str(key)]:
                cursors[str(key)] = value
        return child_item


def child_cursor_plans(definition: RestApiSourceDefinition) -> dict[str, tuple[str, ParentCursors]]:
    """Child resources with an incremental: their parent's name and their cursors."""
    plans = {}
    for resource in definition.extract.resources:
        incremental = resource.endpoint.incremental
        fields = parent_fields(resource)
        if incremental is not None and fields:
            parent, key_field = fields[0]
            plans[resource.name] = (parent, ParentCursors(resource, incremental, parent, key_field))
    return plans


def per_parent_config(resource_config: dict, parent: str, cursors: ParentCursors) -> dict:
    """The child's resource config for dlt: no dlt incremental, the start parameter from the parent's cursor,
    the parent's key field included in its items."""
    endpoint = {key: value for key, value in resource_config["endpoint"].items() if key != "incremental"}
    endpoint["params"] = {
        **endpoint.get("params", {}),
        cursors.incremental.start_param: f"{{resources.{parent}.{CURSOR_FIELD}}}",
    }
    included = list(resource_config.get("include_from_parent", []))
    if cursors.parent_key_field not in included:
        included.append(cursors.parent_key_field)
    return {**resource_config, "endpoint": endpoint, "include_from_parent": included}
