"""A user's flow-matching or v-prediction network through the callable source: one network in both time
conventions gives the same samples, a v- and an eps-wrapping of one network give the same samples, guided in the
method's own space; a model trained here with train.objective=flow or v runs end to end, and eps keeps its ids."""
from dataclasses import replace

import pytest
import torch

from bench.guidance import CountedNet, GuidanceContext, make_guidance
from bench.models.train import model_id
from bench.runner import cli as runner
from bench.sampling.grids import grid_lambdas
from bench.sampling.samplers import sample
from bench.sources import load_model
from bench.spec.sections import DataSpec, ModelSpec, NetSpec, SampleSpec, TrainSpec


def _samples(spec: ModelSpec, sampler: str, grid: str, method=("cfg_zero_star", {"w": 1.5, "zero_init_steps": 1}),
             **ends):
    eps = load_model(spec, (1, 8, 8), 10, "cpu").eps.double()  # float64: equal up to rounding, not float32's
    ctx = GuidanceContext(CountedNet(eps), 10)
    eps_fn = make_guidance(method[0], ctx, **method[1])
    lams = grid_lambdas(SampleSpec(steps=6, grid=grid, **ends))
    return sample(eps_fn, (1, 8, 8), range(4), 10, sampler=sampler, clip_x=False, lambdas=lams, dtype=torch.float64)[0]


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m"])
def test_one_flow_network_in_both_time_conventions_gives_the_same_samples(sampler):
    repa = ModelSpec(source="callable", function="user_models:tiny_flow_net", prediction="flow",
                     time_convention="noise_at_1", null_label=10)
    sit = replace(repa, function="user_models:tiny_flow_net_sit", time_convention="noise_at_0")
    a, b = _samples(repa, sampler, "flow"), _samples(sit, sampler, "flow")
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(a, _samples(repa, sampler, "flow", ("cfg", {"w": 1.5})))  # guidance acted


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp_2m", "ancestral"])
def test_a_v_and_an_eps_wrapping_of_one_network_give_the_same_samples(sampler):
    eps = ModelSpec(source="callable", function="user_models:tiny_eps_net", null_label=10)
    v = replace(eps, function="user_models:tiny_v_net", prediction="v")
    ends = {"lambda_min": -8.0, "lambda_max": 8.0}  # within the schedule's levels, where both answer for the asked lambda
    # the discrete source hands networks a float32 t, so the v-network's alpha(t) is float32's: rtol 1e-4
    torch.testing.assert_close(_samples(eps, sampler, "lambda", ("apg", {"w": 1.0}), **ends),
                               _samples(v, sampler, "lambda", ("apg", {"w": 1.0}), **ends), rtol=1e-4, atol=1e-6)


def test_the_objective_enters_a_models_id_only_when_it_is_not_eps():
    data, net = DataSpec("digits"), NetSpec()
    assert model_id(data, net, TrainSpec()) == model_id(data, net, TrainSpec(objective="eps"))
    assert len({model_id(data, net, TrainSpec(objective=o)) for o in ("eps", "v", "flow")}) == 3


@pytest.mark.parametrize("objective, sampler, grid", [("flow", "euler", "flow_shift"), ("v", "heun", "edm")])
def test_a_model_trained_here_with_another_objective_runs_a_cell(objective, sampler, grid, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert runner.main(["--suite", "tiny", "--quiet", "--no-report", "--out", str(out), "--only", "cfg_p0.1_w0.5_T4",
                        "--set", f"train.objective={objective}", "--set", f"sample.sampler={sampler}",
                        "--set", f"sample.grid={grid}", "--set", "classifier.steps=1"]) == 0
    metrics = [p.read_text() for p in (out / "tiny" / "runs").glob("*/metrics.json")]
    assert len(metrics) == 1 and '"fid"' in metrics[0]


@pytest.mark.parametrize("settings, message", [
    (["model.source=callable", "model.function=user_models:tiny_flow_net", "model.prediction=flow"],
     "model.prediction=flow needs the network's time convention"),
    (["model.source=callable", "model.function=user_models:tiny_eps_net", "model.time_convention=noise_at_0"],
     "is for flow velocity models"),
    (["sample.grid=flow", "sample.rho=5"], "sample.rho=5.0 shapes the edm grid, not sample.grid='flow'"),
    (["sample.grid=lambda", "sample.lambda_min=-30"], "outside the noise levels it was trained at"),
    (["model.source=callable", "model.function=user_models:gaussian_denoiser", "model.prediction=denoiser",
      "model.sigma_min=0.01", "model.sigma_max=10", "model.null_label=10", "sample.grid=edm"],
     "outside the noise levels it was trained at"),
    (["guidance.space=score"], "guidance.space='score' is not valid"),
    (["sample.sampler=rk4"], "sample.sampler='rk4' is not valid"),
    (["train.objective=score"], "train.objective='score' is not valid"),
])
def test_bad_flow_and_solver_settings_exit_2_with_one_line_before_any_work(settings, message, tmp_path, monkeypatch,
                                                                           capsys):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    args = ["--suite", "tiny", "--quiet", "--out", str(tmp_path / "out"), "--only", "cfg_p0.1_w0.5_T4"]
    for setting in settings:
        args += ["--set", setting]
    assert runner.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
