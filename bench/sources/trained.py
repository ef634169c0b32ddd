"""The `trained` model source: the harness trains the model from the spec's net and train sections
(bench/models/train.py), today's path and run ids; it takes no files."""
from __future__ import annotations

from bench.models.process import LAMBDA_MAX, LAMBDA_MIN
from bench.models.unet import UNet
from bench.sources.base import SOURCES, Source, SourceError, register_source
from bench.spec.sections import ModelSpec

PRETRAINED_FIELDS = ("path", "config", "classifier_path", "classifier_config", "vae_path", "function")


def _check_trained(spec: ModelSpec, num_classes: int) -> None:
    """A model trained here takes no files: a path or name given for a pretrained one is a mistake."""
    given = [f"model.{name}={getattr(spec, name)!r}" for name in PRETRAINED_FIELDS if getattr(spec, name)]
    if spec.prediction != "eps" or spec.time_convention:
        given.append(f"model.prediction={spec.prediction!r}" + (f", model.time_convention={spec.time_convention!r}"
                                                                 if spec.time_convention else ""))
    if given:
        raise SourceError(f"{', '.join(given)} given, but model.source=trained trains the model here; set "
                          f"model.source to one of {', '.join(n for n in SOURCES.names() if n != 'trained')} "
                          "(a model trained here predicts what train.objective says)")


register_source(Source(name="trained", trains=True, check=_check_trained, null_label=lambda spec: -1,
                       untrained=lambda spec, net, shape, num_classes: UNet(net, shape[0], num_classes),
                       noise_range=lambda spec: (LAMBDA_MIN, LAMBDA_MAX)))
