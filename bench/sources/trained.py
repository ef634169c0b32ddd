"""The `trained` model source: the harness trains the model from the spec's net and train sections
(bench/models/train.py), today's path and run ids; it takes no files."""
from __future__ import annotations

from bench.models.unet import UNet
from bench.sources.base import SOURCES, Source, SourceError, register_source
from bench.spec.sections import ModelSpec

PRETRAINED_FIELDS = ("path", "config", "classifier_path", "classifier_config", "vae_path", "function")


def _check_trained(spec: ModelSpec, num_classes: int) -> None:
    """A model trained here takes no files: a path or name given for a pretrained one is a mistake."""
    given = [f"model.{name}={getattr(spec, name)!r}" for name in PRETRAINED_FIELDS if getattr(spec, name)]
    if given:
        raise SourceError(f"{', '.join(given)} given, but model.source=trained trains the model here; set "
                          f"model.source to one of {', '.join(n for n in SOURCES.names() if n != 'trained')}")


register_source(Source(name="trained", trains=True, check=_check_trained, null_label=lambda spec: -1,
                       untrained=lambda spec, net, shape, num_classes: UNet(net, shape[0], num_classes)))
