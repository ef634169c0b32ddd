"""`--set section.field=value` overrides: parsed by the field's type, then validated by the spec itself."""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import replace
from typing import Any

from bench.spec.errors import SpecError
from bench.spec.sections import RunSpec, sections


class OverrideError(SpecError):
    """A bad --set key or a value that does not parse as the field's type."""


def field_types() -> dict[str, Any]:
    """Every overridable key ("sample.steps") and its type."""
    out = {}
    for section, cls in sections().items():
        hints = typing.get_type_hints(cls)
        out.update({f"{section}.{f.name}": hints[f.name] for f in dataclasses.fields(cls)})
    return out


def _parse(key: str, raw: str, tp: Any) -> Any:
    try:
        if tp is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError("true or false")
            return raw.lower() in ("true", "1")
        if tp in (int, float, str):
            return tp(raw)
        args = typing.get_args(tp)
        if typing.get_origin(tp) is tuple and typing.get_origin(args[0]) is None:
            items = [v for v in raw.replace("(", "").replace(")", "").split(",") if v.strip()]
            return tuple(args[0](v) for v in items)
        value = json.loads(raw)  # guidance.params: a JSON object such as {"w": 0.3}
        if not isinstance(value, dict):
            raise ValueError("a JSON object such as {\"w\": 0.3}")
        return tuple(sorted((k, tuple(map(tuple, v.items())) if isinstance(v, dict) else v) for k, v in value.items()))
    except (ValueError, TypeError) as err:
        raise OverrideError(f"--set {key}={raw}: expected {getattr(tp, '__name__', tp)} ({err})") from None


def parse_overrides(pairs: list[str]) -> dict[tuple[str, str], Any]:
    """{(section, field): value} from KEY=VALUE strings; unknown keys list the valid ones."""
    types = field_types()
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise OverrideError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set sample.num_samples=512")
        key, raw = pair.split("=", 1)
        if key not in types:
            raise OverrideError(f"--set: unknown key {key!r}; valid keys: {', '.join(types)}")
        section, name = key.split(".")
        out[(section, name)] = _parse(key, raw, types[key])
    return out


def apply_overrides(spec: RunSpec, overrides: dict[tuple[str, str], Any]) -> RunSpec:
    """The spec with the overrides applied; each section revalidates itself (SpecError on a bad value)."""
    for (section, name), value in overrides.items():
        spec = replace(spec, **{section: replace(getattr(spec, section), **{name: value})})
    return spec
