import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))
# Features by torch eager unless a test asks for the measured choice (tests/evaluation/test_runtimes.py):
# each test's private cache would otherwise measure every runtime again.
os.environ.setdefault("BENCH_FEATURE_RUNTIME", "torch-eager")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private model cache so tests never reuse a developer's trained models."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """The tiny suite run once without interruption into <root>/full (models cached in <root>/cache)."""
    from bench.runner import cli as runner
    root = tmp_path_factory.mktemp("tiny")
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CACHE", str(root / "cache"))
    assert runner.main(["--suite", "tiny", "--quiet", "--out", str(root / "full")]) == 0
    yield root
    mp.undo()
