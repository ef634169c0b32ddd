"""`--set section.field=value` overrides, validated against the RunSpec dataclasses."""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import replace
from typing import Any

from .config import RunSpec


class OverrideError(ValueError):
    """A bad --set key or value; the message lists the valid keys or the expected type."""


def valid_keys() -> list[str]:
    hints = typing.get_type_hints(RunSpec)
    keys = []
    for section, tp in hints.items():
        for f in dataclasses.fields(tp):
            keys.append(f"{section}.{f.name}")
    return keys


def _parse(key: str, raw: str, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    try:
        if tp is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1")
        if tp in (int, float, str):
            return tp(raw)
        if origin is tuple and typing.get_origin(typing.get_args(tp)[0]) is None:
            items = [v for v in raw.replace("(", "").replace(")", "").split(",") if v.strip()]
            return tuple(typing.get_args(tp)[0](v) for v in items)
        value = json.loads(raw)  # guidance.params: a JSON object such as {"w": 0.3}
        if not isinstance(value, dict):
            raise ValueError("a JSON object such as {\"w\": 0.3}")
        return tuple(sorted(value.items()))
    except (ValueError, TypeError) as err:
        raise OverrideError(f"--set {key}={raw}: expected {getattr(tp, '__name__', tp)} ({err})") from None


def parse_overrides(pairs: list[str]) -> dict[tuple[str, str], Any]:
    out = {}
    valid = valid_keys()
    hints = typing.get_type_hints(RunSpec)
    for pair in pairs:
        if "=" not in pair:
            raise OverrideError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set sample.num_samples=512")
        key, raw = pair.split("=", 1)
        if key not in valid:
            raise OverrideError(f"--set: unknown key {key!r}; valid keys: {', '.join(valid)}")
        section, name = key.split(".")
        tp = typing.get_type_hints(hints[section])[name]
        out[(section, name)] = _parse(key, raw, tp)
    return out


def apply_overrides(spec: RunSpec, overrides: dict[tuple[str, str], Any]) -> RunSpec:
    for (section, name), value in overrides.items():
        spec = replace(spec, **{section: replace(getattr(spec, section), **{name: value})})
    return spec
