"""Where a suite's time goes: a stopwatch for each stage of a run, a ledger of every run, a breakdown.

Stages (`STAGES`): data (datasets and extractor weights), reference (features of the real split,
per extractor), train (each diffusion model, classifier and guide), sampling, features (per
extractor), metrics (scoring with bootstrap intervals) and figures. Each measurement carries its
units (images, steps, network evaluations x images), so a rate per unit can plan the next run
(`rates`, used by --dry-run), and whether it was computed or loaded from the cache.

Every invocation of a suite appends its measurements to <out>/<suite>/stages.jsonl, tagged with the
invocation and the machine (`machine_identity`): a resumed suite adds up across invocations, and rates
are taken only from measurements made on the same machine and device.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from bench.infra.envinfo import cpu_model
from bench.infra.store import append_record

STAGES = ("data", "reference", "train", "sampling", "features", "metrics", "figures")
LEDGER = "stages.jsonl"


def sampling_key(data: str, net_hash: str, settings: str) -> str:
    """What a sampling rate (seconds per network evaluation of one image) depends on."""
    return f"{data} net {net_hash[:8]} {settings}"


def train_key(kind: str, data: str, net_hash: str) -> str:
    """What a training rate (seconds per image seen) depends on: the network and data, not p_uncond or steps."""
    return f"{kind} {data} net {net_hash[:8]}"


def features_key(kind: str, shape: tuple[int, ...], runtime: str) -> str:
    """What a feature extraction rate (seconds per image) depends on: the extractor kind, the image shape and
    the runtime that computed the features (bench/evaluation/runtimes.py)."""
    return f"{kind} {'x'.join(map(str, shape))} {runtime}"


def metrics_key(bootstrap: int, extractors: str) -> str:
    """What scoring's rate (seconds per image) depends on: the bootstrap draws and the feature spaces scored."""
    return f"bootstrap B={bootstrap} {extractors}"


def machine_identity(device: str) -> str:
    """What a timing depends on besides the work: the device, its name, and the cores torch uses."""
    import torch
    if device.startswith("cuda"):  # a plan may be priced for a GPU from a machine without one
        return f"cuda:{torch.cuda.get_device_name(device) if torch.cuda.is_available() else 'unknown (none here)'}"
    return f"cpu:{cpu_model()} {torch.backends.cpu.get_cpu_capability()} x{torch.get_num_threads()} threads"


class Stopwatch:
    """The measurements of one invocation; `stage(...)` times a block, `flush(path)` appends them."""

    def __init__(self, device: str):
        self.device, self.machine = device, machine_identity(device)
        self.invocation = f"{time.strftime('%Y-%m-%dT%H:%M:%S')}-{uuid.uuid4().hex[:6]}"
        self.entries: list[dict] = []

    @contextmanager
    def stage(self, stage: str, item: str = "", *, units: float = 0.0, unit: str = "", key: str = "",
              cached: bool = False) -> Iterator[None]:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        start = time.perf_counter()
        yield
        self.record(stage, item, time.perf_counter() - start, units=units, unit=unit, key=key, cached=cached)

    def record(self, stage: str, item: str, seconds: float, *, units: float = 0.0, unit: str = "", key: str = "",
               cached: bool = False) -> None:
        """One measurement; `key` names what its rate per unit depends on (default: the item)."""
        self.entries.append({"stage": stage, "item": item, "key": key or item, "seconds": seconds, "units": units,
                             "unit": unit, "cached": cached, "invocation": self.invocation, "machine": self.machine})

    def flush(self, path: str | os.PathLike) -> None:
        """Append what was measured since the last flush to the ledger at `path` (one JSON line each)."""
        if not self.entries:
            return
        append_record(path, "".join(json.dumps(e) + "\n" for e in self.entries))
        self.entries = []


LEDGER_COLUMNS = ["stage", "item", "key", "seconds", "units", "unit", "cached", "invocation", "machine"]
_warned: set[Path] = set()


def _entry(line: str) -> dict | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not (isinstance(entry, dict) and set(LEDGER_COLUMNS) <= set(entry) and entry["stage"] in STAGES):
        return None
    numbers = (entry["seconds"], entry["units"])
    finite = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in numbers)
    return entry if finite else None


def read_ledger(path: str | os.PathLike) -> pd.DataFrame:
    """Every measurement in a ledger (an empty frame if there is none). Lines that are not whole
    records (a torn tail from a killed writer, foreign bytes) are skipped, and said so once per file;
    timings only price plans, so no result depends on them."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    lines = [line for line in path.read_bytes().decode("utf-8", "replace").splitlines() if line.strip()]
    entries = [_entry(line) for line in lines]
    skipped = sum(e is None for e in entries)
    if skipped and path.resolve() not in _warned:
        _warned.add(path.resolve())
        print(f"note: skipped {skipped} unreadable line(s) of the stage ledger {path} (a torn write); "
              "the next run's append cuts a torn tail off", file=sys.stderr)
    return pd.DataFrame([e for e in entries if e is not None], columns=LEDGER_COLUMNS)


def breakdown(ledger: pd.DataFrame) -> pd.DataFrame:
    """Seconds per (stage, item) summed over invocations, in stage order, with each one's share of the
    total and the invocations and machines that measured it."""
    if ledger.empty:
        return pd.DataFrame(columns=["stage", "item", "seconds", "share", "units", "unit", "cached", "invocations", "machines"])
    table = (ledger.groupby(["stage", "item"], sort=False)
             .agg(seconds=("seconds", "sum"), units=("units", "sum"), unit=("unit", "first"),
                  cached=("cached", "all"), invocations=("invocation", "nunique"),
                  machines=("machine", lambda m: "; ".join(sorted(set(m)))))
             .reset_index())
    table["share"] = table["seconds"] / table["seconds"].sum()
    table["order"] = table["stage"].map(STAGES.index)
    table = table.sort_values(["order", "seconds"], ascending=[True, False]).drop(columns="order")
    return table[["stage", "item", "seconds", "share", "units", "unit", "cached", "invocations", "machines"]]


def by_stage(ledger: pd.DataFrame) -> pd.DataFrame:
    """Seconds and share per stage (items summed), in stage order."""
    table = breakdown(ledger)
    if table.empty:
        return table
    return table.groupby("stage", sort=False).agg(seconds=("seconds", "sum"), share=("share", "sum")).reset_index()


def rates(ledgers: list[pd.DataFrame], machine: str) -> dict[tuple[str, str], float]:
    """Seconds per unit for each (stage, key) measured on `machine` with real work (not cache loads),
    pooled over the ledgers given: the basis of --dry-run's estimate."""
    frames = [t for t in ledgers if not t.empty]
    if not frames:
        return {}
    table = pd.concat(frames)
    table = table[(table["machine"] == machine) & ~table["cached"].astype(bool) & (table["units"] > 0)]
    pooled = table.groupby(["stage", "key"]).agg(seconds=("seconds", "sum"), units=("units", "sum"))
    return {key: row.seconds / row.units for key, row in pooled.iterrows()}
