"""Name -> item registries (datasets, suites, guidance methods, model sources, feature extractors).

Duplicates are refused when registered (a programming error); an unknown name raises the
registry's own BenchError subclass listing every known name, so a user's typo is one line.
`import_submodules` is how a package of records (one file each) registers them all: every module
of the package is imported, so a new record is a new file and nothing else.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar

from bench.spec.errors import BenchError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """`kind` names one item in messages ("dataset"), `plural` many ("datasets")."""

    def __init__(self, kind: str, plural: str, error: type[BenchError] = UnknownNameError):
        self.kind, self.plural, self.error = kind, plural, error
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`: returns the item unchanged."""
        return lambda item: self.add(name, item)

    def __getitem__(self, name: str) -> T:
        if name not in self._items:
            raise self.error(f"unknown {self.kind} {name!r}; known {self.plural}: {', '.join(self.names())}")
        return self._items[name]

    def check(self, name: str) -> None:
        """Raise the registry's error, listing the known names, unless `name` is registered."""
        self[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        return sorted(self._items)

    def values(self) -> list[T]:
        return [self._items[name] for name in self.names()]


def import_submodules(package: str) -> list[str]:
    """Import every module of `package` (not its subpackages) in name order; returns their names."""
    root = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(root.__path__) if not m.ispkg)
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
