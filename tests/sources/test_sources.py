"""Model sources (bench/sources): pretrained networks adapted to eps_fn(z, lambda, labels), offline.

The ADM networks are checked against outputs that guided-diffusion's own code computed on tiny
configurations (tests/sources/data/make_adm_reference.py), so a key or block that differs from the released
layout cannot pass.
"""
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.runner import cli as runner
from bench.spec.sections import ModelSpec
from bench.models.process import alpha_sigma
from bench.sources import SOURCES, load_model
from bench.models.adm import CONFIGS, AdmNet
from bench.sources.noise import (DiscreteEpsModel, DiscreteTimesteps, EDMEpsModel, cosine_alphas_cumprod,
                                 linear_alphas_cumprod)
from bench.sources.base import SourceError
from user_models import DATA_STD

REFERENCE = Path(__file__).parent / "data" / "adm_tiny_reference.pt"


@pytest.fixture(scope="module")
def reference():
    return torch.load(REFERENCE, weights_only=True)


@pytest.mark.parametrize("name", ["tiny", "tiny-classifier"])
def test_adm_loads_the_released_layout_strictly_and_reproduces_guided_diffusion(reference, name):
    net = AdmNet(CONFIGS[name]).eval()
    net.load_state_dict(reference[name]["state_dict"], strict=True)
    x, t, y = reference["x"], reference["t"], reference["y"]
    with torch.no_grad():
        out = net(x, t, y) if name == "tiny" else net(x, t)
    torch.testing.assert_close(out, reference[name]["output"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("schedule", [cosine_alphas_cumprod, linear_alphas_cumprod])
def test_lambda_t_round_trips(schedule):
    steps = DiscreteTimesteps(schedule(1000))
    t = torch.tensor([0.0, 1.0, 17.25, 500.0, 998.5, 999.0])
    low = t.floor().long().clamp(max=998)  # lambda at fractional t: interpolated in log sigma = -lambda / 2
    lam = torch.lerp(steps.lambdas[low], steps.lambdas[low + 1], (t - low).double())
    torch.testing.assert_close(steps.t_of_lambda(lam.float()), t, rtol=0, atol=1e-2)
    grid = torch.arange(1000.0)
    torch.testing.assert_close(steps.t_of_lambda(steps.lambdas.float()), grid, rtol=0, atol=1e-2)
    ab = schedule(1000)
    torch.testing.assert_close(steps.lambdas, torch.log(ab / (1 - ab)))  # lambda_t = log(abar / (1 - abar))
    assert steps.t_of_lambda(torch.tensor([50.0, -50.0])).tolist() == [0.0, 999.0]  # clamped to the model's range


def test_discrete_adapter_calls_the_network_at_the_mapped_timestep_and_keeps_the_eps_half():
    net = AdmNet(CONFIGS["tiny"]).eval()
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    steps = DiscreteTimesteps(cosine_alphas_cumprod(1000))
    eps = DiscreteEpsModel(net, steps, channels=1)
    z, labels = torch.randn(3, 1, 8, 8), torch.tensor([1, 2, 3])
    lam = steps.lambdas[[10, 400, 900]].float()
    with torch.no_grad():
        direct = net(z, torch.tensor([10.0, 400.0, 900.0]), labels)
        torch.testing.assert_close(eps(z, lam, labels), direct[:, :1], rtol=1e-4, atol=1e-4)


def test_edm_adapter_gives_the_exact_eps_of_gaussian_data():
    """For x ~ N(0, s^2 I), the optimal denoiser is D(x; sigma) = x s^2 / (s^2 + sigma^2) and the optimal
    VP eps-prediction is E[eps | z] = sigma_vp z / (alpha^2 s^2 + sigma_vp^2): the adapter must turn one into
    the other exactly."""
    from user_models import GaussianDenoiser
    eps = EDMEpsModel(GaussianDenoiser(), 1e-3, 1e3)
    z, lam = torch.randn(4, 1, 4, 4, dtype=torch.float64), torch.tensor([-6.0, -1.0, 0.5, 5.0], dtype=torch.float64)
    alpha, sigma = alpha_sigma(lam)
    expected = (sigma / (alpha ** 2 * DATA_STD ** 2 + sigma ** 2))[:, None, None, None] * z
    torch.testing.assert_close(eps(z, lam, None), expected)


def test_callable_source_loads_a_user_function():
    spec = ModelSpec(source="callable", function="user_models:tiny_eps_net", null_label=10)
    loaded = load_model(spec, (1, 8, 8), 10, "cpu")
    assert loaded.null_label == 10 and loaded.classifier is None
    assert loaded.eps(torch.randn(2, 1, 8, 8), torch.zeros(2), torch.tensor([0, 10])).shape == (2, 1, 8, 8)
    assert SOURCES["trained"].trains and not SOURCES["callable"].trains


def _adm_files(tmp_path: Path, reference) -> tuple[Path, Path]:
    model, classifier = tmp_path / "model.pt", tmp_path / "classifier.pt"
    torch.save(reference["tiny"]["state_dict"], model)
    torch.save(reference["tiny-classifier"]["state_dict"], classifier)
    return model, classifier


def test_adm_model_and_classifier_run_a_cell_end_to_end(reference, tmp_path, monkeypatch):
    """A tiny ADM checkpoint and its classifier, in the released layout, through sampling, features and metrics."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    model, classifier = _adm_files(tmp_path, reference)
    assert runner.main(["--suite", "tiny", "--quiet", "--no-report", "--out", str(tmp_path / "out"),
                        "--only", "clf-noisy_cond_p0.1_s1_T4", "--set", "model.source=adm", "--set", f"model.path={model}",
                        "--set", "model.config=tiny", "--set", f"model.classifier_path={classifier}",
                        "--set", "model.classifier_config=tiny-classifier"]) == 0
    metrics = [p.read_text() for p in (tmp_path / "out" / "tiny" / "runs").glob("*/metrics.json")]
    assert len(metrics) == 1 and '"model_source": "adm"' in metrics[0]
    assert not (tmp_path / "cache" / "models").exists()  # nothing was trained
    assert not (tmp_path / "cache" / "classifiers").exists()  # the source's own classifier guided


def test_callable_source_runs_cfg_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    assert runner.main(["--suite", "tiny", "--quiet", "--no-report", "--out", str(tmp_path / "out"),
                        "--only", "cfg_p0.1_w0.5_T4", "--set", "model.source=callable",
                        "--set", "model.function=user_models:tiny_eps_net", "--set", "model.null_label=10",
                        "--set", "classifier.steps=1"]) == 0
    assert not (tmp_path / "cache" / "models").exists()


@pytest.mark.parametrize("settings, message", [
    (["model.source=adm", "model.config=tiny", "model.path={bad}"], "does not match the architecture: 1 unexpected keys"),
    (["model.source=adm", "model.config=tiny", "model.path={model}", "guidance.method=cfg", 'guidance.params={{"w": 0.5}}'],
     "needs null_label"),
    (["model.source=adm", "model.config=tiny", "model.path={model}", "model.classifier_path={classifier}",
      "model.classifier_config=imagenet64-classifier"], "has 1000 classes but the model has 10"),
    (["model.source=adm", "model.config=huge", "model.path={model}"], "is not an ADM architecture; known: imagenet64"),
    (["model.source=adm", "model.config=tiny", "model.path=/nowhere.pt"], "does not exist"),
    (["model.source=callable", "model.function=user_models:gaussian_denoiser", "model.prediction=denoiser"],
     "needs the denoiser's noise range"),
    (["model.source=callable", "model.function=user_models:nothing_here"], "cannot be imported"),
    (["model.source=callable", "model.function=user_models:not_a_network"], "returned str, not a torch.nn.Module"),
    (["model.source=callable", "model.function=user_models:wrong_signature"],
     "has the signature (spec); expected function(spec, shape, num_classes) -> torch.nn.Module"),
    (["model.source=callable", "model.function=user_models:one_argument_net"],
     "has the signature (x); expected net(x_t, t, labels) -> eps"),
    (["model.source=callable", "model.function=user_models:raises"], "raised RuntimeError: the user's code failed"),
    (["model.source=hub"], "unknown model source 'hub'; known model sources: adm, callable, diffusers, trained"),
])
def test_bad_model_sources_exit_2_with_one_message(settings, message, reference, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    model, classifier = _adm_files(tmp_path, reference)
    bad = tmp_path / "bad.pt"
    torch.save({**reference["tiny"]["state_dict"], "extra.weight": torch.zeros(1)}, bad)
    args = [a.format(model=model, classifier=classifier, bad=bad) for a in settings]
    assert runner.main(["--suite", "tiny", "--quiet", "--no-report", "--out", str(tmp_path / "out"),
                        "--only", "clf-noisy_cond_p0.1_s1_T4", "--set", "classifier.steps=1",
                        *(x for a in args for x in ("--set", a))]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not list((tmp_path / "out").glob("tiny/runs/*/metrics.json"))


def test_source_error_is_a_bench_error():
    from bench.spec.errors import BenchError
    assert issubclass(SourceError, BenchError)


def test_adm64_preset_plans_with_the_users_files_and_refuses_without_them(tmp_path, capsys):
    model, classifier = tmp_path / "64x64_diffusion.pt", tmp_path / "64x64_classifier.pt"
    model.touch(), classifier.touch()
    args = ["--suite", "adm64", "--dry-run", "--out", str(tmp_path), "--set", f"model.classifier_path={classifier}",
            "--set", f"data.root={tmp_path}"]
    assert runner.main([*args, "--set", f"model.path={model}"]) == 0
    out = capsys.readouterr().out
    assert "plan: 8 cells (0 finished), 400,000 samples" in out and "still to run at least" in out
    assert runner.main(args) == 2
    assert "model.path is empty; name the local checkpoint file" in capsys.readouterr().err


diffusers = pytest.importorskip("diffusers", reason="the diffusers source is an optional extra")


@pytest.fixture(scope="module")
def tiny_dit(tmp_path_factory):
    """A randomly initialised latent DiT (10 classes + null) and a one-level AutoencoderKL for 1x8x8 digits,
    written as save_pretrained folders."""
    root = tmp_path_factory.mktemp("dit")
    torch.manual_seed(0)
    dit = diffusers.DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8,
                                          num_layers=1, sample_size=8, patch_size=2, num_embeds_ada_norm=10)
    vae = diffusers.AutoencoderKL(in_channels=1, out_channels=1, latent_channels=4, block_out_channels=(32,),
                                  norm_num_groups=32, sample_size=8)
    dit.save_pretrained(root / "dit")
    vae.save_pretrained(root / "vae")
    return root


def test_diffusers_adapter_is_the_model_at_the_mapped_timestep(tiny_dit):
    loaded = load_model(ModelSpec(source="diffusers", path=str(tiny_dit / "dit"), vae_path=str(tiny_dit / "vae"),
                                  schedule="linear"), (1, 8, 8), 10, "cpu")
    assert loaded.null_label == 10 and loaded.sample_shape == (4, 8, 8)
    dit = diffusers.DiTTransformer2DModel.from_pretrained(tiny_dit / "dit").eval()
    steps = DiscreteTimesteps(linear_alphas_cumprod(1000))
    t = torch.tensor([3.0, 420.0])
    z, labels = torch.randn(2, 4, 8, 8), torch.tensor([1, 10])
    with torch.no_grad():
        direct = dit(z, t, class_labels=labels).sample[:, :4]
        torch.testing.assert_close(loaded.eps(z, steps.lambdas[t.long()].float(), labels), direct, rtol=1e-4, atol=1e-4)
        assert loaded.decode(z).shape == (2, 1, 8, 8)


def test_latent_dit_cell_runs_end_to_end_through_features_and_metrics(tiny_dit, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    args = ["--suite", "tiny", "--quiet", "--no-report", "--out", str(tmp_path / "out"), "--only", "cfg_p0.1_w0.5_T4",
            "--set", "model.source=diffusers", "--set", f"model.path={tiny_dit / 'dit'}",
            "--set", f"model.vae_path={tiny_dit / 'vae'}", "--set", "model.schedule=linear", "--set", "classifier.steps=1"]
    assert runner.main(args) == 2  # latents would be clipped
    assert "set sample.clip_x=false" in capsys.readouterr().err
    assert runner.main([*args, "--set", "sample.clip_x=false"]) == 0
    metrics = [p.read_text() for p in (tmp_path / "out" / "tiny" / "runs").glob("*/metrics.json")]
    assert len(metrics) == 1 and '"model_source": "diffusers"' in metrics[0] and '"fid":' in metrics[0]


def test_dit256_preset_plans_from_the_users_folders(tiny_dit, tmp_path, capsys):
    (tmp_path / "imagenet" / "n01440764").mkdir(parents=True)
    assert runner.main(["--suite", "dit256", "--dry-run", "--out", str(tmp_path), "--set", f"model.path={tiny_dit / 'dit'}",
                        "--set", f"model.vae_path={tiny_dit / 'vae'}", "--set", f"data.root={tmp_path / 'imagenet'}"]) == 0
    out = capsys.readouterr().out
    assert "plan: 8 cells (0 finished), 400,000 samples" in out and "dit256_cfg_w0.5_T250" in out


def test_diffusers_unet2d_is_adapted_with_the_users_null_label(tmp_path):
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(32, 32),
                                 down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                                 norm_num_groups=8, layers_per_block=1, num_class_embeds=11)
    unet.save_pretrained(tmp_path / "unet")
    spec = ModelSpec(source="diffusers", path=str(tmp_path / "unet"), null_label=10)
    loaded = load_model(spec, (1, 8, 8), 10, "cpu")
    assert loaded.null_label == 10 and loaded.sample_shape is None and loaded.decode is None
    steps = DiscreteTimesteps(cosine_alphas_cumprod(1000))
    t, z, labels = torch.tensor([5.0, 700.0]), torch.randn(2, 1, 8, 8), torch.tensor([3, 10])
    with torch.no_grad():
        direct = unet.eval()(z, t, class_labels=labels).sample
        torch.testing.assert_close(loaded.eps(z, steps.lambdas[t.long()].float(), labels), direct, rtol=1e-4, atol=1e-4)
    assert load_model(replace(spec, null_label=-1), (1, 8, 8), 10, "cpu").null_label is None


def test_a_diffusers_flow_model_is_its_velocity_at_t_times_the_timesteps(tmp_path):
    """A diffusers folder of a flow-matching UNet (model.prediction=flow): the network is asked at x_t = z / (alpha +
    sigma) and timestep t * model.timesteps, as diffusers' FlowMatch schedulers drive it, and its velocity becomes eps."""
    from bench.models.parameterisation import flow_scale, flow_time, to_eps
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(32, 32),
                                 down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                                 norm_num_groups=8, layers_per_block=1, num_class_embeds=11)
    unet.save_pretrained(tmp_path / "unet")
    spec = ModelSpec(source="diffusers", path=str(tmp_path / "unet"), null_label=10, prediction="flow",
                     time_convention="noise_at_1")
    loaded = load_model(spec, (1, 8, 8), 10, "cpu")
    z, lam, labels = torch.randn(2, 1, 8, 8), torch.tensor([-3.0, 2.0]), torch.tensor([3, 10])
    with torch.no_grad():
        velocity = unet.eval()(z * flow_scale(lam, z), flow_time(lam.double()).float() * 1000, class_labels=labels).sample
        torch.testing.assert_close(loaded.eps(z, lam, labels), to_eps("flow", z, lam, velocity), rtol=1e-4, atol=1e-4)
    with pytest.raises(SourceError, match="model.time_convention is given exactly for model.prediction=flow"):
        load_model(replace(spec, time_convention=""), (1, 8, 8), 10, "cpu")
