"""Plain names: what a suite or cell may be called, since each becomes a folder under the results
root. A plain name is 1 to 120 characters of letters, digits and . _ + = , -, starts with a letter
or digit, and holds no "..": no separator, no parent reference, nothing that leaves the root."""
from __future__ import annotations

import re

from bench.spec.errors import SpecError

PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=,-]{0,119}")


class PlainNameError(SpecError):
    """A suite or cell name that is not a plain name."""


def check_plain_name(name: object, what: str) -> str:
    """`name` if it is a plain name (module doc), else a SpecError saying what is allowed."""
    if not isinstance(name, str) or not PLAIN.fullmatch(name) or ".." in name:
        raise PlainNameError(f"{what} name {name!r} is not a plain name: use 1-120 letters, digits and . _ + = , - "
                         "starting with a letter or digit, with no '/', '\\\\' or '..' (it names a folder under the results root)")
    return name
