"""Compose's variable interpolation, enough of it for our compose file, so that the file can be
validated as Compose sees it: `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
`${VAR:?message}`, `${VAR?message}` and `$$`, applied to the parsed YAML's string values
(not to the raw text), as Compose applies it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(KeyError):
    """A ``${VAR:?message}`` whose variable is unset (Compose refuses to start)."""


def interpolate_string(text: str, environ: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        value = environ.get(name)
        empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op and op.endswith("?") and empty:
            raise MissingVariable(f"{name}: {arg}")
        if op and op.endswith("-") and empty:
            return arg
        return value or ""

    return _VARIABLE.sub(replace, text)


def variables(text: str) -> dict[str, str | None]:
    """Each variable the text uses, and its ``op`` (None for a plain ``${VAR}``)."""
    return {m.group("name"): m.group("op") for m in _VARIABLE.finditer(text) if m.group("name")}


def load_compose(text: str, environ: Mapping[str, str]) -> Any:
    """The compose file's YAML with every string value interpolated.

    Raises:
        MissingVariable: a required variable is unset.
    """

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return interpolate_string(node, environ) if isinstance(node, str) else node

    return walk(yaml.safe_load(text))
