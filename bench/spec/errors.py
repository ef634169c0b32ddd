"""The one base class of errors a user can fix.

Bad input (a spec value out of range, an unknown name, a missing file), bad state (a corrupt
checkpoint, a full disk) and runs that cannot go on (a diverging loss) raise a subclass of
BenchError, defined beside the code that detects it. The CLI prints the message on one line and
exits with status 2; finished cells are kept. Any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations


class BenchError(Exception):
    """A problem the user can fix; the message says what was wrong and what would be right."""


class UnknownNameError(BenchError, LookupError):
    """A name that no registry holds (suite, dataset, guidance method, feature extractor)."""


class SpecError(BenchError, ValueError):
    """A spec field outside its valid range or set, or an unknown spec key."""
