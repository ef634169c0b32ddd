"""A spec as canonical JSON and its stable hash: to_dict / from_dict round-trip the frozen sections,
and stable_hash is the sha256 of their canonical JSON, identical across processes and machines.
Fields added after results were stored are left out while they hold their default (`later` in
bench/spec/rules.py), so every stored run keeps its id."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any

from bench.spec.errors import SpecError


def _hashed(f: dataclasses.Field, value: Any) -> bool:
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    return not (f.metadata.get("omit_default_from_hash") and value == default)

def _hash_value(f: dataclasses.Field, value: Any) -> Any:
    return f.metadata.get("hashed_as", {}).get(value, value) if isinstance(value, str) else value

def to_dict(spec: Any, *, for_hash: bool = False) -> Any:
    """A JSON-ready dict; tuples become lists, nested specs become dicts.
    for_hash leaves out LATER fields that hold their defaults."""
    if dataclasses.is_dataclass(spec):
        return {f.name: to_dict(_hash_value(f, getattr(spec, f.name)) if for_hash else getattr(spec, f.name), for_hash=for_hash)
                for f in dataclasses.fields(spec) if not for_hash or _hashed(f, getattr(spec, f.name))}
    if isinstance(spec, dict):
        return {k: to_dict(v, for_hash=for_hash) for k, v in spec.items()}
    if isinstance(spec, (tuple, list)):
        return [to_dict(v, for_hash=for_hash) for v in spec]
    return spec

def _from_value(tp: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value)
    if isinstance(value, list):  # JSON lists are the specs' tuples, at any depth
        return tuple(_from_value(None, v) for v in value)
    return value

def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Inverse of to_dict for the spec dataclasses; unknown keys are an error naming the valid ones."""
    hints = typing.get_type_hints(cls)
    types = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    unknown = set(data) - set(types)
    if unknown:
        raise SpecError(f"unknown {cls.__name__} keys {sorted(unknown)}; valid keys: {sorted(types)}")
    return cls(**{k: _from_value(types[k], v) for k, v in data.items()})

def stable_hash(obj: Any, length: int = 12) -> str:
    """sha256 of canonical JSON: identical across processes and machines."""
    blob = json.dumps(to_dict(obj, for_hash=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
