"""Field profiles of sampled KV values: what `dlt-platform profile` prints before anyone loads a namespace."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class FieldProfile:
    name: str
    present: int = 0
    types: Counter = field(default_factory=Counter)
    example: object = None


@dataclass
class Profile:
    records: int = 0
    non_json: int = 0
    non_object_json: int = 0
    binary: int = 0
    fields: dict[str, FieldProfile] = field(default_factory=dict)

    @property
    def non_json_share(self) -> float:
        return self.non_json / self.records if self.records else 0.0


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def profile_records(records) -> Profile:
    profile = Profile()
    for record in records:
        profile.records += 1
        if record["value_encoding"] != "text":
            profile.binary += 1
            profile.non_json += 1
            continue
        try:
            value = json.loads(record["value"])
        except ValueError:
            profile.non_json += 1
            continue
        if not isinstance(value, dict):
            profile.non_object_json += 1
            continue
        for name, item in value.items():
            entry = profile.fields.setdefault(name, FieldProfile(name))
            entry.present += 1
            entry.types[_type_name(item)] += 1
            if entry.example is None and item is not None:
                entry.example = item
    return profile
