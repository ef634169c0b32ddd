"""Progress of a stage (training, sampling): a tqdm bar on a terminal, one summary line elsewhere.

Logs written to a file or a pipe (CI, Slurm, `> log`) get no bar redraws: when the stage ends
they get one line with its count, time and last status ("train digits: 400 steps in 12.3s,
loss=0.0412"). `quiet` prints nothing at all.
"""
from __future__ import annotations

import sys
import time
from typing import Generic, Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


class Stage(Generic[T]):
    """Iterate over `items` as one named stage; `status(**values)` sets what the bar or line shows."""

    def __init__(self, items: Iterable[T], desc: str, unit: str, *, quiet: bool = False, total: int | None = None):
        self.items, self.desc, self.unit, self.quiet = items, desc, unit, quiet
        self.total = total if total is not None else len(items) if hasattr(items, "__len__") else None
        self.values: dict[str, str] = {}
        self.bar = tqdm(total=self.total, desc=desc, unit=unit, leave=False) if self.interactive() else None

    def interactive(self) -> bool:
        return not self.quiet and sys.stderr.isatty()

    def status(self, **values: object) -> None:
        self.values = {k: str(v) for k, v in values.items()}
        if self.bar is not None:
            self.bar.set_postfix(self.values)

    def __iter__(self) -> Iterator[T]:
        start, n = time.perf_counter(), 0
        try:
            for item in self.items:
                yield item
                n += 1
                if self.bar is not None:
                    self.bar.update()
        finally:
            if self.bar is not None:
                self.bar.close()
        if not self.quiet and self.bar is None:
            extra = "".join(f", {k}={v}" for k, v in self.values.items())
            print(f"{self.desc}: {n} {self.unit} in {time.perf_counter() - start:.1f}s{extra}", flush=True)
