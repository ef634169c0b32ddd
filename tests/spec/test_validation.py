"""Specs are validated before any work: every field has a valid range or set, and every invalid
value given through --set stops with exit 2, one line, no traceback, earlier results untouched."""
import dataclasses
import math
import shutil
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.runner import cli as runner
from bench.spec.sections import RunSpec, sections
from bench.spec.errors import SpecError
from bench.spec.overrides import apply_overrides, field_types, parse_overrides

# At least one invalid value for every spec field. Fields whose valid values live in a registry
# (data.name, guidance.*, eval.features) or on disk (data.root) are refused by
# bench.runner.validate.validate_cells, the rest by the spec itself as it is built.
INVALID = {
    "data.name": ["imagenet", ""],
    "data.root": ["/nonexistent/data"],
    "data.size": ["-1", "7"],  # 7: the tiny suite's network halves the image once
    "data.label_base": ["-1"],
    "data.num_classes": ["-3"],
    "data.grayscale": ["maybe"],
    "net.channels": ["0", "12"],
    "net.channel_mult": ["", "0,2"],
    "net.blocks_per_level": ["0"],
    "net.attention_levels": ["5", "-1"],
    "net.dropout": ["1.0", "-0.1", "nan"],
    "train.p_uncond": ["1.5", "-0.1", "nan"],
    "train.steps": ["0", "-2"],
    "train.batch_size": ["0"],
    "train.lr": ["nan", "0", "-1e-3", "inf"],
    "train.ema_decay": ["1.0", "-0.5"],
    "train.grad_clip": ["0", "inf"],
    "train.seed": ["-1"],
    "train.objective": ["score"],
    "sample.sampler": ["rk4"],
    "sample.grid": ["karras"],
    "sample.lambda_min": ["nan", "50"],
    "sample.lambda_max": ["-50"],  # also below lambda_min
    "sample.sigma_min": ["0", "-1"],
    "sample.sigma_max": ["inf"],
    "sample.rho": ["0"],
    "sample.shift": ["-3"],
    "sample.steps": ["0"],
    "sample.v": ["2", "-1"],
    "sample.clip_x": ["maybe"],
    "sample.num_samples": ["-5", "0", "40"],  # 40: not above the evaluator's 64 feature dimensions
    "sample.seed": ["-1"],
    "sample.batch_size": ["0"],
    "sample.precision": ["fp16"],
    "sample.channels_last": ["2"],
    "sample.compile": ["yes"],
    "guidance.method": ["cfgg", ""],
    "guidance.space": ["score"],
    "guidance.params": ["[1]", '{"q": 1}', '{"w": "strong"}'],
    "classifier.noise_aware": ["x"],
    "classifier.width": ["12", "0"],
    "classifier.steps": ["0"],
    "classifier.batch_size": ["-1"],
    "classifier.lr": ["nan"],
    "classifier.seed": ["-7"],
    "eval.features": ["clip"],
    "eval.reference_split": ["test"],
    "eval.inception_fid": ["sometimes"],
    "eval.bootstrap": [10, 0, 2.5],
    "eval.bootstrap_reference": ["yes"],
    "guide.channels": [12, 0],
    "guide.steps": [0],
    "guide.p_uncond": [1.5, -0.1],
    "train.precision": ["fp16"],
    "train.channels_last": ["2"],
    "train.compile": ["yes"],
    "eval.fast_features": ["sometimes"],
    "eval.dinov2_weights": ["/nowhere/dinov2_vitl14_pretrain.pth"],
    "eval.reference_stats": ["/nowhere/ref.npz", "/nowhere/ref.txt"],
    "eval.protocol": ["tf1"],
    "model.source": ["hub", ""],
    # files and names a pretrained source would use, set while the model is trained here: a mistake
    "model.path": ["/nowhere/model.pt"],
    "model.config": ["imagenet64"],
    "model.classifier_path": ["/nowhere/classifier.pt"],
    "model.classifier_config": ["imagenet64-classifier"],
    "model.vae_path": ["/nowhere/vae"],
    "model.function": ["my_models:build"],
    "model.prediction": ["x0"],
    "model.time_convention": ["backwards"],
    "model.schedule": ["quadratic"],
    "model.timesteps": ["1"],
    "model.sigma_min": ["-1"],
    "model.sigma_max": ["nan"],
    "model.null_label": ["-2"],
}


def test_every_spec_field_has_a_rule_and_invalid_values_in_the_table():
    for section, cls in sections().items():
        for f in dataclasses.fields(cls):
            assert "rule" in f.metadata, f"{section}.{f.name} has no valid range or set"
    assert set(INVALID) == set(field_types()), "every field needs invalid values in INVALID"


@pytest.fixture(scope="module")
def results(finished, tmp_path_factory):
    """A copy of a finished tiny suite that every invalid run is pointed at."""
    out = tmp_path_factory.mktemp("invalid") / "out"
    shutil.copytree(finished / "full" / "tiny", out / "tiny")
    return out


def _snapshot(root):
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("key,value", [(k, v) for k, values in INVALID.items() for v in values])
def test_every_invalid_value_exits_2_with_one_line_and_keeps_results(key, value, results, finished, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_CACHE", str(finished / "cache"))
    before = _snapshot(results)
    start = time.perf_counter()
    assert runner.main(["--suite", "tiny", "--out", str(results), "--set", f"{key}={value}"]) == 2
    elapsed = time.perf_counter() - start
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert not out.strip(), "nothing may run before the error"
    assert _snapshot(results) == before
    assert elapsed < 5, f"{key}={value} took {elapsed:.1f}s to refuse"


@pytest.mark.parametrize("value", ["sample.num_samples=-5", "sample.steps=0", "train.lr=nan"])
def test_range_errors_exit_2_in_under_a_second_from_the_shell(value, tmp_path):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--suite", "tiny", "--out", str(tmp_path), "--set", value],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and value.split("=")[0] in proc.stderr
    assert elapsed < 1.0, f"--set {value} took {elapsed:.2f}s"
    assert not any(tmp_path.iterdir())


def test_out_naming_a_file_is_a_clear_error(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    assert runner.main(["--suite", "tiny", "--out", str(target)]) == 2
    assert "is a file; name a folder" in capsys.readouterr().err
    assert target.read_text() == "not a folder"


def test_error_names_the_field_the_value_and_the_valid_range():
    with pytest.raises(SpecError, match=r"train\.p_uncond=1\.5 is not valid: expected a number in \[0, 1\]"):
        apply_overrides(RunSpec(), parse_overrides(["train.p_uncond=1.5"]))
    with pytest.raises(SpecError, match="net.attention_levels=.* the network has levels 0..1"):
        apply_overrides(RunSpec(), parse_overrides(["net.attention_levels=2"]))


COUNTS = [("train", "steps", 1), ("train", "batch_size", 1), ("sample", "steps", 1), ("sample", "num_samples", 1),
          ("sample", "batch_size", 1), ("sample", "seed", 0), ("data", "size", 0), ("classifier", "steps", 1)]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(COUNTS), st.integers(-10**9, 10**9))
def test_counts_accept_exactly_the_integers_in_their_range(field, value):
    import dataclasses as dc

    from bench.spec.sections import sections as all_sections
    section, name, minimum = field
    rule = next(f for f in dc.fields(all_sections()[section]) if f.name == name).metadata["rule"]
    maximum = int(rule.words.rsplit(", ", 1)[1].rstrip("]").replace(",", ""))
    build = lambda: apply_overrides(RunSpec(), {(section, name): value})  # noqa: E731
    if minimum <= value <= maximum:
        assert getattr(getattr(build(), section), name) == value
    else:
        with pytest.raises(SpecError, match=rf"{section}\.{name}={value} is not valid"):
            build()


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_rates_accept_exactly_the_unit_interval(value):
    ok = math.isfinite(value) and 0 <= value <= 1
    try:
        apply_overrides(RunSpec(), {("train", "p_uncond"): value})
        accepted = True
    except SpecError:
        accepted = False
    assert accepted == ok


def _numeric_keys(kind):
    from bench.spec.overrides import field_types
    return [k for k, tp in field_types().items() if tp is kind]


@pytest.mark.parametrize("key", _numeric_keys(float))
@pytest.mark.parametrize("raw", ["inf", "-inf", "nan", "1e309"])
def test_no_float_field_takes_a_non_finite_value(key, raw):
    from bench.spec.overrides import apply_overrides, parse_overrides
    from bench.spec.sections import RunSpec
    with pytest.raises(SpecError, match="is not valid"):
        apply_overrides(RunSpec(), parse_overrides([f"{key}={raw}"]))


@pytest.mark.parametrize("key", _numeric_keys(int))
def test_every_count_has_an_upper_bound(key):
    from bench.spec.overrides import apply_overrides, parse_overrides
    from bench.spec.rules import MAX_COUNT
    from bench.spec.sections import RunSpec
    with pytest.raises(SpecError, match="is not valid"):
        apply_overrides(RunSpec(), parse_overrides([f"{key}={MAX_COUNT + 1}"]))


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-10**30, max_value=10**30))
@settings(max_examples=300, deadline=None)
def test_guidance_parameters_are_finite_and_bounded(value):
    from bench.spec.rules import MAX_PARAMETER, PAIRS
    ok = PAIRS.ok((("w", value),))
    assert ok == (math.isfinite(value) and abs(value) <= MAX_PARAMETER)
