"""The fast path changes how the network is evaluated, never the science.

Tolerances for bf16: bf16 keeps 8 significand bits, so one rounding is off by at most
2^-8 = 0.39 % relative; a network's output error is a few such roundings averaged over
many terms, and we measured 0.34 % on the ci model. We allow 2^-6 = 1.6 % (4 roundings).
Over a 16-step ancestral run the per-step errors do not compound (the sampler contracts
towards x_hat and the injected noise is identical), and we measured a mean absolute
pixel difference of 0.0012 in [-1, 1] (0.15 of one uint8 level); we allow 0.01
(1.3 levels on average) and no pixel further than 0.1.
"""
import json
from dataclasses import replace

import pandas as pd
import pytest
import torch

from baselines.noisy_classifier import NoisyClassifier
from bench.spec.sections import NetSpec, SampleSpec
from bench.spec.errors import SpecError
from bench.spec.hashing import stable_hash
from bench.models import autotune
from bench.models.autotune import choose
from bench.models.fastpath import NetworkRunner, compiled
from bench.runner.fast import network_calls
from bench.runner.suite import suite_cells
from bench.guidance import CountedNet, GuidanceContext, make_guidance
from bench.sampling.samplers import sample
from bench.suites.cells import SUITES
from bench.models.unet import UNet

SHAPE = (1, 8, 8)


@pytest.fixture
def net():
    torch.manual_seed(0)
    model = UNet(NetSpec(channels=16, channel_mult=(1, 2), attention_levels=(1,)), 1, 10).eval()
    with torch.no_grad():  # zero-initialised output layers would make eps identically 0
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def draw(eps_fn, steps=16):
    return sample(make_guidance("cfg", GuidanceContext(CountedNet(eps_fn), 10), w=1.0), SHAPE, range(24), 10,
                  steps=steps)[0]


def test_disabled_fast_path_is_bit_identical_to_calling_the_network(net):
    plain = draw(net)
    assert torch.equal(draw(NetworkRunner(net, SampleSpec(), "cpu")), plain)


def test_channels_last_fp32_agrees_to_rounding(net):
    """channels_last picks other convolution kernels (another summation order): fp32 rounding
    differences of ~1e-7 that 16 steps amplify to ~1e-4 at worst, far below one uint8 level (0.008)."""
    reference = draw(NetworkRunner(net, SampleSpec(), "cpu"))
    fast = draw(NetworkRunner(net, SampleSpec(channels_last=True), "cpu"))
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-3)


def test_bf16_network_error_is_within_a_few_roundings(net):
    z, lam, y = torch.randn(32, *SHAPE), torch.linspace(-10, 10, 32), torch.arange(32) % 10
    exact = NetworkRunner(net, SampleSpec(), "cpu")(z, lam, y)
    bf16 = NetworkRunner(net, SampleSpec(precision="bf16", channels_last=True), "cpu")(z, lam, y)
    assert bf16.dtype == torch.float32 and bf16.is_contiguous()
    relative = ((bf16 - exact).norm() / exact.norm()).item()
    assert 0 < relative < 2 ** -6


def test_bf16_samples_stay_within_the_justified_pixel_tolerance(net):
    reference = draw(NetworkRunner(net, SampleSpec(), "cpu"))
    bf16 = draw(NetworkRunner(net, SampleSpec(precision="bf16"), "cpu"))
    difference = (bf16 - reference).abs()
    assert difference.mean() < 0.01 and difference.max() < 0.1
    assert not torch.equal(bf16, reference)  # bf16 was really used


def test_classifier_guidance_still_gets_its_gradient_through_the_fast_path(net):
    clf = NoisyClassifier(1, 10, width=8).eval()
    runner = NetworkRunner(net, SampleSpec(channels_last=True), "cpu")
    ctx = GuidanceContext(CountedNet(runner), 10, CountedNet(clf.log_prob_grad))
    guided, _ = sample(make_guidance("classifier", ctx, scale=2.0), SHAPE, range(4), 10, steps=3)
    assert torch.isfinite(guided).all() and ctx.classifier.rows == 4 * 3


def test_unknown_precision_names_the_valid_ones():
    with pytest.raises(SpecError, match="sample.precision='fp16' is not valid: expected one of fp32, bf16"):
        SampleSpec(precision="fp16")


def _timings(candidates: dict) -> dict:
    """Candidate timings from {name: seconds or (seconds, warm-up, eps error)}."""
    out = {}
    for name, value in candidates.items():
        sec, warm, err = value if isinstance(value, tuple) else (value, 0.0, 0.0)
        out[name] = {"seconds": sec, "warmup_seconds": warm, "relative_error": err}
    return out


def test_fast_path_is_chosen_by_the_measurements():
    base = {"contiguous fp32": 1.0, "channels_last fp32": 0.99}
    # nothing 5% faster: fp32 eager stays
    assert choose(_timings({**base, "contiguous bf16": 0.97})) == (False, "fp32", False)
    # bf16 faster and within tolerance: chosen; faster but too inaccurate: refused
    assert choose(_timings({**base, "channels_last bf16": (0.5, 0.0, 0.01)})) == (True, "bf16", False)
    assert choose(_timings({**base, "channels_last bf16": (0.5, 0.0, 0.2)})) == (False, "fp32", False)
    # emulated bf16, slower: never chosen
    assert choose(_timings({**base, "channels_last bf16": (6.0, 0.0, 0.01)})) == (False, "fp32", False)
    # compile: chosen only where its saving over the calls repays the first compilation
    compiled = _timings({**base, "channels_last fp32 compiled": (0.5, 60.0, 0.0)})
    assert choose(compiled, passes=100) == (False, "fp32", False)  # saves 49 s < 60 s warm-up
    assert choose(compiled, passes=1000) == (True, "fp32", True)
    assert choose(compiled) == (True, "fp32", True)  # steady state


def test_decision_is_measured_once_per_machine_and_network_and_cached(tmp_path, monkeypatch):
    calls = []

    def fake_measure(*args, **kwargs):
        calls.append(args)
        return _timings({"contiguous fp32": 1.0, "channels_last fp32": 0.5})
    monkeypatch.setattr(autotune, "measure", fake_measure)
    net = NetSpec(channels=8, channel_mult=(1, 2), attention_levels=())
    first = autotune.decide(net, (1, 8, 8), 10, 16, "cpu", cache=tmp_path)
    again = autotune.decide(net, (1, 8, 8), 10, 16, "cpu", cache=tmp_path)
    assert len(calls) == 1 and first.settings() == again.settings() == (True, "fp32", False)
    chosen = first.timings[autotune.candidate_name(*first.settings())]["seconds"]
    assert first.timings["contiguous fp32"]["seconds"] / chosen == 2.0 and first.machine in open(first.path).read()
    autotune.decide(net, (1, 8, 8), 10, 32, "cpu", cache=tmp_path)  # another batch is another measurement
    monkeypatch.setattr(autotune, "machine_identity", lambda device: "cpu:another machine")
    autotune.decide(net, (1, 8, 8), 10, 16, "cpu", cache=tmp_path)  # so is another machine
    assert len(calls) == 3


def test_measured_candidates_agree_with_fp32_and_fast_cells_record_the_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    net = NetSpec(channels=8, channel_mult=(1, 2), attention_levels=())
    timings = autotune.measure(net, (1, 8, 8), 10, 8, "cpu", rounds=1, passes=1)
    assert timings["contiguous fp32"]["relative_error"] == 0.0
    # the same arithmetic in another layout or compiled: other kernels, equal to rounding (each candidate has
    # its own copy of the network, so a layout set by one cannot leak into another's measurement)
    assert max(t["relative_error"] for n, t in timings.items() if "fp32" in n) < 1e-5
    assert all(t["relative_error"] < autotune.BF16_TOLERANCE for t in timings.values())
    cells = suite_cells("tiny", fast=True, device="cpu")
    decisions = [json.loads(p.read_text()) for p in (tmp_path / "fastpath").glob("*.json")]
    assert len(decisions) == 2  # the tiny suite has one network: sampling passes and training steps, measured apart
    sampling = next(d for d in decisions if d["batch"] == cells[0].spec.sample.batch_size)
    training = next(d for d in decisions if d["batch"] == cells[0].spec.train.batch_size)
    chosen = autotune.choose(sampling["timings"], sum(network_calls(c) for c in cells))
    assert {(c.spec.sample.channels_last, c.spec.sample.precision, c.spec.sample.compile) for c in cells} == {chosen}
    chosen = autotune.choose(training["timings"], cells[0].spec.train.steps)
    assert {(c.spec.train.channels_last, c.spec.train.precision, c.spec.train.compile) for c in cells} == {chosen}
    assert not any(c.spec.eval.fast_features for c in cells)  # bf16 features move FID too much (results/perf)


def test_training_runs_with_the_fast_settings(tmp_path):
    """bf16 autocast and channels_last in training: the loss stays finite and the EMA model samples."""
    from bench.spec.sections import DataSpec, TrainSpec
    from bench.models.train import train_diffusion
    net = NetSpec(channels=8, channel_mult=(1, 2), attention_levels=())
    model = train_diffusion(DataSpec("digits"), net, TrainSpec(steps=5, batch_size=16, precision="bf16", channels_last=True),
                            cache=tmp_path, quiet=True)
    eps = model(torch.randn(2, 1, 8, 8), torch.zeros(2), torch.tensor([0, 10]))
    assert torch.isfinite(eps).all()
    assert "precision" in json.loads(next(tmp_path.glob("models/*/train_log.json")).read_text())["spec"]["train"]


def test_fast_path_fields_at_defaults_keep_stored_run_ids():
    """The fields were added after results were stored: at their defaults they must not enter
    the hash, and set they must change it (so fast and fp32 results never share a run id)."""
    cell = SUITES["mnist5k"].build()[0]
    assert cell.run_id == "cfg_p0.1_w0_T32-9f1b64c3"  # committed in results/mnist5k/runs (then named mnist)
    for fast in (replace(cell.spec.sample, channels_last=True), replace(cell.spec.sample, precision="bf16"),
                 replace(cell.spec.sample, compile=True)):
        assert stable_hash(cell.spec.sample) != stable_hash(fast)


def test_perf_script_writes_ratios_and_report(tmp_path):
    """`python -m bench.perf` in a tiny configuration: every target row is computed from one run."""
    from bench.perf.cli import main
    from bench.perf.workload import STEPS
    assert main(["--out", str(tmp_path), "--rounds", "1", "--batch", "4"]) == 0
    ratios = pd.read_csv(tmp_path / "ratios.csv")
    assert len(ratios) == 7 and ratios.measured.gt(0).all()
    throughput = pd.read_csv(tmp_path / "throughput.csv").set_index("config")
    assert throughput.at["cfg w=0", "nfe_per_image"] == throughput.at["unguided", "nfe_per_image"] == STEPS
    assert throughput.at["cfg two-pass", "nfe_per_image"] == 2 * STEPS
    report = (tmp_path / "report.md").read_text()
    assert "## Targets" in report and "python -m bench.perf --out" in report
    roof = pd.read_csv(tmp_path / "roofline.csv")
    assert set(roof.network) >= {"mnist UNet (unguided)", "mnist UNet (unguided fast)"}
    assert roof.fraction_of_peak.between(0, 1, inclusive="neither").all()  # below the peak, by construction of a peak
    decision = pd.read_csv(tmp_path / "fastpath_decision.csv")
    assert decision.groupby("work").chosen_steady_state.sum().to_dict() == {"sampling": 1, "training": 1}
    assert "## What --fast chose here" in report


def test_extraction_batch_sweep_times_every_variant_at_every_batch(monkeypatch):
    """The Inception batch sweep passes each batch size through to every extraction variant (each runtime
    and the fast path) and reports throughput relative to the largest batch (here with stand-in variants)."""
    from bench.perf import extraction
    calls = []

    def variant(name):
        def features(images):
            calls.append((name, len(images)))
            return (torch.zeros(len(images), 4),)
        return features

    class Images:
        images = torch.zeros(256, 1, 28, 28, dtype=torch.uint8)

    monkeypatch.setattr(extraction, "_inception_variants", lambda device: {"fp32 eager": variant("fp32 eager"),
                                                                            "fast": variant("fast")})
    monkeypatch.setattr("bench.data.datasets.load_dataset", lambda data, split: Images)
    table = extraction.extraction_batch_sizes(2, "cpu", batches=(8, 32))
    assert sorted(set(calls)) == [("fast", 8), ("fast", 32), ("fp32 eager", 8), ("fp32 eager", 32)]
    assert sorted(zip(table.extraction, table.batch)) == [("fast", 8), ("fast", 32), ("fp32 eager", 8), ("fp32 eager", 32)]
    assert table[table.batch == 32].vs_largest_batch.eq(1.0).all() and table.images_per_second.gt(0).all()


def test_compiled_variants_past_dynamos_default_limit_stay_compiled():
    """Autotune compiles a network in many variants in one process; past dynamo's default limit of 8 the
    rest would silently run eagerly and be timed as 'compiled'."""
    from torch._dynamo.utils import counters
    counters.clear()
    net = compiled(torch.nn.Linear(4, 4), dynamic=False, backend="eager")  # each input shape: one more variant
    for rows in range(1, 12):
        net(torch.randn(rows, 4))
    assert counters["stats"]["unique_graphs"] == 11
