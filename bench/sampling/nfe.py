"""Network evaluations per image, counted rather than written down: a method's eps_fn is run through
the real sampler over the real lambda grid against counting stubs, so a plan counts exactly what a run
will evaluate (CFG at w = 0 skips its unconditional half, interval guidance skips it outside the
interval, CFG-Zero*'s zero-init steps evaluate nothing, Heun evaluates twice a step but once at the last)."""
from __future__ import annotations

from bench.guidance import make_guidance, stub_context
from bench.sampling.samplers import sample
from bench.spec.sections import GuidanceSpec


def count_evaluations(guidance: GuidanceSpec, *, steps: int, sampler: str, v: float = 0.3,
                      clip_x: bool = True, lambdas=None) -> dict[str, float]:
    """Per image: diffusion-network evaluations (`nfe`: the model's and the guide's), the guide's
    alone, and classifier forward+backward passes, counted by sampling 2 tiny images with stubs
    (over `lambdas`, the grid the run uses: None is the cosine grid of `steps`)."""
    ctx = stub_context()
    eps_fn = make_guidance(guidance.method, ctx, guidance.space, **guidance.kwargs())
    images = 2
    sample(eps_fn, (1, 8, 8), range(images), ctx.num_classes, sampler=sampler, steps=steps, v=v, clip_x=clip_x,
           lambdas=lambdas)
    return {"nfe": (ctx.model.rows + ctx.guide.rows) / images, "guide_evals": ctx.guide.rows / images,
            "classifier_evals": ctx.classifier.rows / images}


def count_for(spec) -> dict[str, float]:
    """count_evaluations for a run spec's guidance, solver and grid."""
    from bench.sampling.grids import grid_lambdas
    s = spec.sample
    return count_evaluations(spec.guidance, steps=s.steps, sampler=s.sampler, v=s.v, clip_x=s.clip_x,
                             lambdas=grid_lambdas(s))
