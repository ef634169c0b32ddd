"""Feature runtimes (bench/evaluation/runtimes.py) and the measured choice among them
(bench/evaluation/runtime_choice.py): every runtime computes eager's features within tolerance on real
digits and on noise, gives the same FID to 0.01, its export is checked before it is trusted, and the
choice is measured once, cached, checked again per process and refuses what is wrong."""
import json

import pytest
import torch

from bench.data.datasets import load_dataset
from bench.evaluation import runtime_choice
from bench.evaluation.features import _module, extract, get_extractor
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from bench.evaluation.runtime_choice import REFERENCE, RUNTIME_ENV, TOLERANCE, choose, noise_like, relative_error
from bench.evaluation.runtimes import RUNTIMES, FeatureRuntime, FeatureRuntimeError, export_stem
from bench.spec.sections import DataSpec

def fid(a: torch.Tensor, b: torch.Tensor) -> float:
    """torch-fidelity's FID (clean-fid's cross-check costs more than the test)."""
    stats = [fid_features_to_statistics(x.double()) for x in (a, b)]
    return fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]


AVAILABLE = [name for name in RUNTIMES if RUNTIMES[name].unavailable("cpu") is None]


@pytest.fixture(scope="module")
def inception():
    extractor = get_extractor("inception", DataSpec("digits"))
    return extractor, _module(extractor, "cpu")


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataSpec("digits"), "heldout").images


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """<cache>/feature-runtimes of a cache private to this module."""
    return tmp_path_factory.mktemp("cache") / "feature-runtimes"


def test_the_alternatives_to_eager_are_installed():
    assert {"openvino", "onnxruntime"} <= set(AVAILABLE), "the package dependencies install both runtimes"


@pytest.fixture(scope="module")
def eager_run(inception, digits, exports):
    """Eager's features of the probe (real digits and noise) and its FID of 24 digits against 24 others."""
    extractor, module = inception
    eager = RUNTIMES[REFERENCE].build(module, tuple(digits.shape[1:]), exports, extractor.sha256)
    probe = torch.cat([digits[:6], noise_like(digits, 6)])
    return probe, eager(probe), fid(eager(digits[:24])[0], eager(digits[24:48])[0])


@pytest.mark.parametrize("name", [n for n in AVAILABLE if n != REFERENCE])
def test_every_runtime_computes_eagers_features_and_fid(name, inception, digits, exports, eager_run):
    extractor, module = inception
    probe, eager_features, eager_fid = eager_run
    features = RUNTIMES[name].build(module, tuple(digits.shape[1:]), exports, extractor.sha256)
    assert relative_error(features(probe), eager_features) <= TOLERANCE
    assert features(probe[:5])[0].shape == (5, 2048)  # the batch dimension is dynamic
    ours = fid(torch.cat([features(b)[0] for b in digits[:24].split(16)]),
               torch.cat([features(b)[0] for b in digits[24:48].split(16)]))
    assert abs(ours - eager_fid) <= runtime_choice.RUNTIME_FID_TOLERANCE


@pytest.mark.parametrize("name", [n for n in AVAILABLE if n != REFERENCE])
def test_a_tampered_export_is_exported_again(name, inception, digits, exports, capsys):
    extractor, module = inception
    shape = tuple(digits.shape[1:])
    RUNTIMES[name].build(module, shape, exports, extractor.sha256)
    stem = export_stem(name, shape, extractor.sha256)
    victim = next(p for p in exports.glob(f"{stem}.*") if not p.name.endswith(".sha256.json"))
    victim.write_bytes(victim.read_bytes()[:-64] + b"\0" * 64)
    features = RUNTIMES[name].build(module, shape, exports, extractor.sha256)
    assert "exporting" in capsys.readouterr().out
    eager = RUNTIMES[REFERENCE].build(module, shape, exports, extractor.sha256)
    assert relative_error(features(digits[:4]), eager(digits[:4])) <= TOLERANCE


@pytest.fixture
def quick(monkeypatch, exports):
    """The choice measured on few images in one round, without the conftest's forced eager, in a cache
    whose exports the tests share (built once) and whose decisions each test starts without."""
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    monkeypatch.setattr(runtime_choice, "TIMED_IMAGES", 4)
    monkeypatch.setattr(runtime_choice, "ROUNDS", 1)
    cache = exports.parent
    for path in (cache / "feature-runtimes").glob("decision-*.json"):
        path.unlink()
    return cache


def _faulty(offset: float) -> FeatureRuntime:
    """A runtime whose features are eager's plus `offset` (a broken exporter)."""
    def build(module, shape, folder, digest):
        eager = RUNTIMES[REFERENCE].build(module, shape, folder, digest)
        return lambda x: tuple(y + offset for y in eager(x))
    return FeatureRuntime(build, ("cpu",))


def test_the_choice_is_measured_once_cached_and_never_picks_a_runtime_outside_tolerance(
        quick, inception, digits, monkeypatch):
    extractor, module = inception
    monkeypatch.setitem(RUNTIMES._items, "faulty", _faulty(1.0))
    first = choose(module, digits[:8], extractor.sha256, 4, "cpu", quick)
    assert first.decided_by == "measured" and first.name != "faulty"
    record = json.loads(next((quick / "feature-runtimes").glob("decision-*.json")).read_text())
    assert record["chosen"] == first.name and record["candidates"]["faulty"]["eligible"] is False
    assert record["candidates"]["faulty"]["relative_error"] > TOLERANCE
    for name in AVAILABLE:
        assert record["candidates"][name]["images_per_second"] > 0
    again = choose(module, digits[:8], extractor.sha256, 4, "cpu", quick)
    assert again.name == first.name and again.decided_by == "cached decision"


def test_a_torn_decision_is_measured_again(quick, inception, digits):
    extractor, module = inception
    choose(module, digits[:8], extractor.sha256, 4, "cpu", quick)
    path = next((quick / "feature-runtimes").glob("decision-*.json"))
    path.write_text('{"chosen": "torch-ea')
    assert choose(module, digits[:8], extractor.sha256, 4, "cpu", quick).decided_by == "measured"


def test_a_cached_choice_that_fails_its_check_here_falls_back_to_eager(quick, inception, digits, monkeypatch,
                                                                      capsys):
    extractor, module = inception
    monkeypatch.setitem(RUNTIMES._items, "drifting", _faulty(0.0))
    path = runtime_choice.decision_path(quick, "cpu", extractor.sha256, tuple(digits.shape[1:]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"chosen": "drifting"}))
    monkeypatch.setitem(RUNTIMES._items, "drifting", _faulty(1.0))  # it changed since it was measured
    chosen = choose(module, digits[:8], extractor.sha256, 4, "cpu", quick)
    assert chosen.name == REFERENCE and "failed its check" in capsys.readouterr().out


def test_a_forced_runtime_is_checked_and_bad_names_are_refused(inception, digits, tmp_path, monkeypatch):
    extractor, module = inception
    monkeypatch.setenv(RUNTIME_ENV, "tensorrt")
    with pytest.raises(FeatureRuntimeError, match="not a feature runtime; choose one of onnxruntime, openvino, torch-eager"):
        choose(module, digits[:8], extractor.sha256, 4, "cpu", tmp_path)
    monkeypatch.setenv(RUNTIME_ENV, "openvino")
    with pytest.raises(FeatureRuntimeError, match="runs on cpu only"):
        choose(module, digits[:8], extractor.sha256, 4, "cuda", tmp_path)
    monkeypatch.setitem(RUNTIMES._items, "faulty", _faulty(1.0))
    monkeypatch.setenv(RUNTIME_ENV, "faulty")
    with pytest.raises(runtime_choice.RuntimeCheckError, match="differ from torch eager's"):
        choose(module, digits[:8], extractor.sha256, 4, "cpu", tmp_path)


def test_streamed_features_equal_one_pass(digits):
    from bench.evaluation.scoring import FeatureStream, cell_extractors, sample_features
    import bench.suites  # noqa: F401  (registers the suites)
    from bench.suites.cells import SUITES
    spec = SUITES["tiny"].build()[0].spec
    extractors = cell_extractors(spec)
    stream = FeatureStream(extractors)
    for part in digits[:50].split(16):
        stream.add(part)
    whole = sample_features(extractors, digits[:50])
    assert torch.equal(stream.images(), digits[:50])
    for layer, value in whole.items():
        torch.testing.assert_close(stream.features()[layer], value, rtol=1e-5, atol=1e-6)
    assert stream.runtimes()["extractor_runtime"] == REFERENCE


def test_an_extractor_without_a_choice_runs_eagerly(digits, monkeypatch):
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    evaluator = get_extractor("evaluator", DataSpec("digits"))
    from bench.evaluation.features import extraction_runtime
    assert extraction_runtime(evaluator, digits[:4]).name == REFERENCE
    assert extract(evaluator, digits[:4])["features"].shape[0] == 4
