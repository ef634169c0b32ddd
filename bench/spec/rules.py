"""What a spec field accepts: a Rule (a predicate and the words for it) per field, checked when a
section is built, so a bad value stops before any work with a SpecError naming `section.field`, the
value and what would be valid."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from bench.spec.errors import SpecError
from bench.spec.hashing import to_dict


@dataclass(frozen=True)
class Rule:
    """What a field accepts: `ok(value)` and the words for it ("an integer >= 1")."""
    words: str
    ok: Callable[[Any], bool]

def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)

def is_real(v: Any) -> bool:
    return (is_int(v) or isinstance(v, float)) and math.isfinite(v)

MAX_COUNT = 10 ** 9  # no count the harness takes (steps, samples, seeds) is honoured beyond this
MAX_PARAMETER = 1e6  # guidance parameters beyond this overflow float32 arithmetic in the guided update

def count(minimum: int = 1, maximum: int = MAX_COUNT) -> Rule:
    return Rule(f"an integer in [{minimum}, {maximum:,}]", lambda v: is_int(v) and minimum <= v <= maximum)

def multiple_of(step: int, maximum: int = 4096) -> Rule:
    return Rule(f"a positive multiple of {step} up to {maximum}",
                lambda v: is_int(v) and step <= v <= maximum and v % step == 0)

def interval(low: float, high: float, *, high_open: bool = False) -> Rule:
    bracket = ")" if high_open else "]"
    return Rule(f"a number in [{low:g}, {high:g}{bracket}",
                lambda v: is_real(v) and low <= v and (v < high if high_open else v <= high))

POSITIVE = Rule("a finite number > 0", lambda v: is_real(v) and v > 0)

FLAG = Rule("true or false", lambda v: isinstance(v, bool))

TEXT = Rule("a string", lambda v: isinstance(v, str))

NAME = Rule("a non-empty name", lambda v: isinstance(v, str) and v.strip() == v and bool(v))

def one_of(*values: str) -> Rule:
    return Rule(f"one of {', '.join(values)}", lambda v: v in values)

def int_tuple(minimum: int, *, nonempty: bool) -> Rule:
    words = f"a {'non-empty ' if nonempty else ''}list of integers >= {minimum}, e.g. 1,2,2"
    return Rule(words, lambda v: isinstance(v, tuple) and (bool(v) or not nonempty)
                and all(is_int(x) and x >= minimum for x in v))

def bounded_values(v: Any) -> bool:
    """Every number in a (nested) parameter value finite and within +-MAX_PARAMETER."""
    if isinstance(v, bool) or isinstance(v, str):
        return True
    if isinstance(v, (int, float)):
        return is_real(v) and abs(v) <= MAX_PARAMETER
    if isinstance(v, tuple):
        return all(bounded_values(x) for x in v)
    return v is None

PAIRS = Rule(f"a JSON object of parameters such as {{\"w\": 0.3}}, every number finite and within +-{MAX_PARAMETER:g}",
             lambda v: isinstance(v, tuple) and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                                                    and bounded_values(p[1]) for p in v))

def spec_field(default: Any, rule: Rule, *, later: bool = False, hashed_as: dict[str, str] | None = None) -> Any:
    """A field with its valid values. `later` marks fields added after results were stored: such
    a field is left out of stable_hash while it holds its default, so older specs keep their hash.
    `hashed_as` maps values renamed after results were stored to the value their hash was made with."""
    return field(default=default, metadata={"rule": rule, "omit_default_from_hash": later, "hashed_as": hashed_as or {}})

class Validated:
    """Checks every field's rule (and the class's `cross_check`) when the spec is built."""
    SECTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value, rule = getattr(self, f.name), f.metadata.get("rule")
            if rule is not None and not rule.ok(value):
                raise SpecError(f"{self.SECTION}.{f.name}={_shown(value)} is not valid: expected {rule.words}")
        self.cross_check()

    def cross_check(self) -> None:
        """Constraints between fields of one section (none by default)."""

def _shown(value: Any) -> str:
    return json.dumps(to_dict(value)) if isinstance(value, tuple) else repr(value)
