"""Method records: NFE planned = NFE measured for every method, the new methods' reductions to known
methods, the samplers' (eps, eps_renoise) contract, and clear errors for bad methods and needs."""
import ast
import copy
from pathlib import Path

import pytest
import torch

from bench.models.parameterisation import from_eps
from bench.spec.sections import GuidanceSpec, NetSpec, RunSpec, SampleSpec
from bench.spec.errors import SpecError
from bench.guidance import METHODS, CountedNet, GuidanceContext, GuidanceError, describe, make_guidance, method_needs
from bench.guidance.registry import with_strength
from bench.sampling.nfe import count_evaluations
from bench.runner.plan import nfe_per_image
from bench.sampling.samplers import sample
from bench.sampling.cell import sample_cell
from bench.suites.cells import Cell
from bench.models.unet import UNet

SHAPE, SEEDS, STEPS = (1, 8, 8), range(6), 6
ROOT = Path(__file__).resolve().parents[2]

def configurations() -> dict[str, dict]:
    """Every registered method at its record's first example (a method without examples at its defaults),
    and a few combinations that reach more of the code: a wrapped classifier in an interval, CFG-Zero*'s
    zero-init steps, a schedule over a method that rescales."""
    out = {m.name: dict(m.examples[0].params) if m.examples else {} for m in METHODS.values()}
    out.update({
        "interval+classifier": ("interval", {"inner": "classifier", "inner_params": (("scale", 1.0),),
                                             "lambda_low": -3.0, "lambda_high": 3.0}),
        "cfg_zero_star+zero_init": ("cfg_zero_star", {"w": 1.0, "zero_init_steps": 2}),
        "schedule+rescaled_cfg": ("schedule", {"shape": "linear", "inner": "rescaled_cfg", "inner_params": (("w", 2.0),)}),
    })
    return {name: value if isinstance(value, tuple) else (name, value) for name, value in out.items()}


EXAMPLES = configurations()


def tiny_net(seed: int, channels: int = 8) -> UNet:
    torch.manual_seed(seed)
    model = UNet(NetSpec(channels=channels), 1, 10).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def nets():
    return tiny_net(0), tiny_net(1, channels=16)


def classifier_grad(z, lam, labels):
    return torch.sin(z) * (labels[:, None, None, None] + 1) / 10


def draw(ctx, method, **params):
    x, _ = sample(make_guidance(method, ctx, **params), SHAPE, SEEDS, 10, steps=STEPS, dtype=torch.float64)
    return x


def test_every_registered_method_has_a_label():
    for method, params in EXAMPLES.values():
        columns = describe(GuidanceSpec(method, tuple(params.items())))
        assert columns["method_label"] and columns["method"] == method


@pytest.mark.parametrize("configuration", sorted(EXAMPLES))
@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_planned_nfe_equals_measured_nfe(configuration, sampler, nets):
    method, params = EXAMPLES[configuration]
    spec = RunSpec(sample=SampleSpec(sampler=sampler, steps=STEPS, num_samples=len(SEEDS), batch_size=4),
                   guidance=GuidanceSpec(method, tuple(params.items())))
    planned_nfe, planned_classifier = nfe_per_image(Cell("c", spec))
    model, guide = nets
    result = sample_cell(spec, copy.deepcopy(model).float(), SHAPE, 10, classifier=classifier_grad,
                         guide=copy.deepcopy(guide).float(), quiet=True)
    assert result.nfe_per_image == planned_nfe
    assert result.classifier_evals_per_image == planned_classifier
    counted = count_evaluations(spec.guidance, steps=STEPS, sampler=sampler)
    assert result.guide_evals_per_image == counted["guide_evals"]


def test_strength_needs_and_labels_come_through_wrappers():
    spec = GuidanceSpec("schedule", (("shape", "cosine"), ("inner", "interval"),
                                     ("inner_params", (("inner", "classifier"), ("inner_params", (("scale", 3.0),))))))
    columns = describe(spec)
    assert (columns["strength_param"], columns["strength"], columns["scale"]) == ("scale", 3.0, 3.0)
    assert columns["method_label"] == "cosine schedule + interval + classifier guidance (cond)"
    assert method_needs(spec.method, spec.kwargs()) == {"noisy_classifier"}


def test_a_strength_is_set_through_wrappers_and_nothing_else_changes():
    spec = GuidanceSpec("schedule", (("shape", "cosine"), ("inner", "interval"),
                                     ("inner_params", (("inner", "classifier"), ("inner_params", (("scale", 3.0),))))))
    params = with_strength(spec.method, spec.kwargs(), 1.5)
    changed = describe(GuidanceSpec(spec.method, tuple(sorted(params.items()))))
    assert (changed["strength_param"], changed["strength"]) == ("scale", 1.5)
    assert {k: v for k, v in changed.items() if k not in ("strength", "scale", "method_label")} == \
        {k: v for k, v in describe(spec).items() if k not in ("strength", "scale", "method_label")}
    assert with_strength("cfg", {"w": 0.3}, 2) == {"w": 2.0}
    with pytest.raises(GuidanceError, match="no strength"):
        with_strength("cond", {}, 1.0)


# ---- reductions ---------------------------------------------------------------------------------

def test_autoguidance_with_the_main_model_as_guide_is_the_conditional_model(nets):
    model, _ = nets
    ctx = GuidanceContext(CountedNet(model), 10, guide=CountedNet(model))
    x = draw(ctx, "autoguidance", w=2.0)
    torch.testing.assert_close(x, draw(GuidanceContext(CountedNet(model), 10), "cond"), rtol=1e-9, atol=1e-9)


def test_autoguidance_extrapolates_away_from_the_guide(nets):
    model, guide = nets
    ctx = GuidanceContext(CountedNet(model), 10, guide=CountedNet(guide))
    z, lam, y = torch.randn(3, *SHAPE, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), torch.arange(3)
    eps = make_guidance("autoguidance", ctx, w=1.5)(z, lam, y)
    torch.testing.assert_close(eps, guide(z, lam, y) + 2.5 * (model(z, lam, y) - guide(z, lam, y)))


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
@pytest.mark.parametrize("clip_x", [True, False])
def test_a_pair_of_equal_eps_is_exactly_the_single_eps(nets, sampler, clip_x):
    model, _ = nets
    single = lambda z, lam, y: model(z, lam, y)  # noqa: E731
    pair = lambda z, lam, y: (model(z, lam, y), model(z, lam, y))  # noqa: E731
    kwargs = dict(steps=STEPS, sampler=sampler, clip_x=clip_x, dtype=torch.float64)
    assert torch.equal(sample(single, SHAPE, SEEDS, 10, **kwargs)[0], sample(pair, SHAPE, SEEDS, 10, **kwargs)[0])


def test_cfgpp_with_equal_eps_is_ddim(nets):
    model, _ = nets
    label_blind = CountedNet(lambda z, lam, y: model(z, lam, torch.zeros_like(y)))
    guided = sample(make_guidance("cfgpp", GuidanceContext(label_blind, 10), guidance_lambda=0.8), SHAPE, SEEDS, 10,
                    steps=STEPS, sampler="ddim", dtype=torch.float64)[0]
    plain = sample(label_blind, SHAPE, SEEDS, 10, steps=STEPS, sampler="ddim", dtype=torch.float64)[0]
    torch.testing.assert_close(guided, plain, rtol=1e-9, atol=1e-9)


def test_cfgpp_renoises_with_the_unconditional_eps(nets):
    model, _ = nets
    ctx = GuidanceContext(CountedNet(model), 10)
    z, lam, y = torch.randn(2, *SHAPE, dtype=torch.float64), torch.ones(2, dtype=torch.float64), torch.arange(2)
    eps, renoise = make_guidance("cfgpp", ctx, guidance_lambda=0.3)(z, lam, y)
    uncond, cond = model(z, lam, torch.full_like(y, 10)), model(z, lam, y)
    torch.testing.assert_close(eps, uncond + 0.3 * (cond - uncond))
    torch.testing.assert_close(renoise, uncond)


def test_cfg_zero_star_reduces_to_cfg(nets):
    model, _ = nets
    ctx = lambda: GuidanceContext(CountedNet(model), 10)  # noqa: E731
    cfg = draw(ctx(), "cfg", w=1.5)
    torch.testing.assert_close(draw(ctx(), "cfg_zero_star", w=1.5, optimized_scale=False), cfg, rtol=1e-9, atol=1e-9)
    label_blind = lambda z, lam, y: model(z, lam, torch.zeros_like(y))  # noqa: E731  (s* = 1 exactly)
    torch.testing.assert_close(draw(GuidanceContext(CountedNet(label_blind), 10), "cfg_zero_star", w=1.5),
                               draw(GuidanceContext(CountedNet(label_blind), 10), "cfg", w=1.5), rtol=1e-9, atol=1e-9)


def test_cfg_zero_star_zero_init_skips_the_network_for_its_steps(nets):
    model, _ = nets
    ctx = GuidanceContext(CountedNet(model), 10)
    draw(ctx, "cfg_zero_star", w=1.0, zero_init_steps=2)
    assert ctx.model.rows == len(SEEDS) * 2 * (STEPS - 2)


def test_rescaled_cfg_with_phi_zero_is_cfg_and_matches_the_std_of_the_conditional_v(nets):
    model, _ = nets
    ctx = lambda: GuidanceContext(CountedNet(model), 10)  # noqa: E731
    torch.testing.assert_close(draw(ctx(), "rescaled_cfg", w=2.0, phi=0.0), draw(ctx(), "cfg", w=2.0), rtol=1e-9, atol=1e-9)
    z, lam, y = torch.randn(3, *SHAPE, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), torch.arange(3)
    eps = make_guidance("rescaled_cfg", ctx(), w=2.0, phi=1.0)(z, lam, y)
    v, v_cond = from_eps("v", z, lam, eps), from_eps("v", z, lam, model(z, lam, y))  # it rescales v, as its paper
    torch.testing.assert_close(v.flatten(1).std(1), v_cond.flatten(1).std(1))


def test_constant_schedule_is_its_inner_method(nets):
    model, _ = nets
    ctx = lambda: GuidanceContext(CountedNet(model), 10)  # noqa: E731
    x = draw(ctx(), "schedule", shape="constant", inner="apg", inner_params=(("w", 1.0), ("momentum", -0.5)))
    assert torch.equal(x, draw(ctx(), "apg", w=1.0, momentum=-0.5))


def test_schedules_average_to_the_constant_strength():
    from bench.guidance.schedule import SCHEDULES
    u = torch.linspace(0, 1, 100001, dtype=torch.float64)
    for shape, f in SCHEDULES.items():
        assert torch.trapezoid(torch.tensor([f(float(x)) for x in u[::100]]), u[::100]).item() == pytest.approx(1.0, abs=1e-6)


# ---- bad input ----------------------------------------------------------------------------------

def test_missing_needs_unknown_methods_and_bad_guides_are_clear_errors(nets):
    model, _ = nets
    ctx = GuidanceContext(CountedNet(model), 10)
    with pytest.raises(GuidanceError, match=r"needs guide \(a guide model\), which this run does not provide"):
        make_guidance("autoguidance", ctx, w=1.0)
    with pytest.raises(GuidanceError, match="needs noisy_classifier"):
        make_guidance("schedule", ctx, inner="classifier", inner_params=(("scale", 1.0),))
    with pytest.raises(GuidanceError, match="known methods: .*autoguidance.*cfgpp"):
        make_guidance("autoguide", ctx)
    with pytest.raises(GuidanceError, match=r"unknown parameters \['w'\]; valid: \['guidance_lambda', 'two_pass'\]"):
        make_guidance("cfgpp", ctx, w=1.0)
    with pytest.raises(GuidanceError, match="in \\[0, 1\\]"):
        make_guidance("cfgpp", ctx, guidance_lambda=1.5)
    with pytest.raises(GuidanceError, match="has no strength to schedule"):
        make_guidance("schedule", ctx, inner="cond", inner_params=())
    with pytest.raises(GuidanceError, match="schedule shape 'cubic' unknown; valid: constant, linear, cosine"):
        make_guidance("schedule", ctx, shape="cubic")
    with pytest.raises(SpecError, match="guide.channels=12 is not valid"):
        RunSpec.__dataclass_fields__["guide"].default_factory().__class__(channels=12)


def test_no_module_branches_on_a_method_name_outside_the_methods_and_their_registry():
    """Method names may appear in the methods' own files, the registry, suite definitions, benchmark
    configurations and the verdicts on the paper's CFG claims; nowhere else."""
    allowed = ("bench/suites/", "bench/perf/", "bench/claims/")
    names = set(METHODS.names())
    offenders = []
    for path in sorted((ROOT / "bench").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel.startswith(("bench/guidance/", *allowed)):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                consts = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                consts += [e.value for c in node.comparators if isinstance(c, (ast.List, ast.Tuple, ast.Set))
                           for e in c.elts if isinstance(e, ast.Constant)]
                if any(isinstance(c, str) and c in names for c in consts):
                    offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, offenders
