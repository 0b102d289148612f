"""Secrets of a rest_api definition: written as {"env": "NAME"}, read from the environment when a run starts.

A missing variable fails the run before any request with one line naming it; the values themselves are only
handed to dlt's auth classes and never logged or put in an error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dlt_platform.source_types.rest_api.errors import MissingSecret


def resolved(value: object, where: str, environ: Mapping[str, str] | None = None) -> object:
    """`value` (a model_dump) with every {"env": NAME} replaced by the variable's value."""
    environ = os.environ if environ is None else environ
    if isinstance(value, dict):
        if set(value) == {"env"} and isinstance(value["env"], str):
            name = value["env"]
            secret = environ.get(name)
            if not secret:
                raise MissingSecret(
                    f"{where}: environment variable {name} is not set (it holds the secret of this field)"
                )
            return secret
        return {key: resolved(item, f"{where}.{key}", environ) for key, item in value.items()}
    if isinstance(value, list):
        return [resolved(item, f"{where}.{index}", environ) for index, item in enumerate(value)]
    return value
