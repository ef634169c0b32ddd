"""The `adm` model source: a guided-diffusion checkpoint (model.path) with the architecture
model.config (bench/models/adm.py, CONFIGS), loaded strictly; learned-sigma outputs keep their eps
half; ADM has no null label. model.classifier_path (with model.classifier_config) adds the released
noisy classifier for classifier guidance."""
from __future__ import annotations

import torch

from bench.models.adm import CONFIGS, AdmNet
from bench.sources.base import LoadedModel, Source, SourceError, existing_file, load_strict, register_source
from bench.sources.noise import SCHEDULES, DiscreteClassifier, DiscreteEpsModel, DiscreteTimesteps, schedule_range
from bench.spec.sections import ModelSpec, NetSpec


def _adm_config(name: str, field: str):
    if name not in CONFIGS:
        raise SourceError(f"model.{field}={name!r} is not an ADM architecture; known: {', '.join(CONFIGS)}")
    return CONFIGS[name]


def _check_adm(spec: ModelSpec, num_classes: int) -> None:
    if spec.prediction != "eps" or spec.time_convention:
        raise SourceError(f"model.prediction={spec.prediction!r}: a guided-diffusion (ADM) network predicts eps "
                          "(and its variance); leave model.prediction and model.time_convention at their defaults")
    existing_file(spec.path, "path")
    config = _adm_config(spec.config, "config")
    if config.encoder:
        raise SourceError(f"model.config={spec.config!r} is a classifier; name a diffusion architecture")
    if config.num_classes is not None and num_classes and config.num_classes != num_classes:
        raise SourceError(f"model.config={spec.config!r} has {config.num_classes} classes but the dataset has "
                          f"{num_classes}; use the dataset the model was trained on")
    if spec.classifier_path:
        existing_file(spec.classifier_path, "classifier_path")
        classifier = _adm_config(spec.classifier_config, "classifier_config")
        if classifier.out_channels != (config.num_classes or num_classes):
            raise SourceError(f"the classifier {spec.classifier_config!r} has {classifier.out_channels} classes but "
                              f"the model has {config.num_classes}; use the classifier trained with the model")


def _load_adm(spec: ModelSpec, shape: tuple[int, ...], num_classes: int) -> LoadedModel:
    timesteps = DiscreteTimesteps(SCHEDULES[spec.schedule](spec.timesteps))
    net = load_strict(AdmNet(CONFIGS[spec.config]), existing_file(spec.path, "path"))
    classifier = None
    if spec.classifier_path:
        clf = load_strict(AdmNet(CONFIGS[spec.classifier_config]), existing_file(spec.classifier_path, "classifier_path"))
        classifier = DiscreteClassifier(clf, timesteps)
    return LoadedModel(DiscreteEpsModel(net, timesteps, shape[0]), None, classifier,
                       f"ADM {spec.config} from {spec.path}")


def _untrained_adm(spec: ModelSpec, net: NetSpec, shape: tuple[int, ...], num_classes: int) -> torch.nn.Module:
    return DiscreteEpsModel(AdmNet(CONFIGS[spec.config]), DiscreteTimesteps(SCHEDULES[spec.schedule](spec.timesteps)),
                            shape[0])


register_source(Source(name="adm", check=_check_adm, load=_load_adm, null_label=lambda spec: None,
                       untrained=_untrained_adm, own_classifier=lambda spec: bool(spec.classifier_path),
                       noise_range=lambda spec: schedule_range(spec.schedule, spec.timesteps)))
