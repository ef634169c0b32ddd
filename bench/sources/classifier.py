"""The harness's own noisy classifier, for models whose source brings none: the baseline of
classifier guidance (baselines/noisy_classifier.py, a timm ResNet on noised images), as the runner,
the plan, the evaluation and perf use it. This record is the one place bench reaches the baseline."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from baselines import noisy_classifier as baseline

GuidanceClassifier = baseline.GuidanceClassifier  # the interface (log_prob_grad) a source's own classifier implements


@dataclass(frozen=True, kw_only=True)
class ClassifierBaseline:
    """How the harness trains, finds, names, builds and inspects its noisy classifier."""
    network: Callable[..., torch.nn.Module]  # (in_channels, num_classes, width=) -> an untrained classifier
    train: Callable[..., torch.nn.Module]  # (data, spec, cache=, device=, quiet=) -> trained or cached
    path: Callable  # (data, spec, cache) -> where its weights are cached
    id: Callable  # (data, spec) -> the id naming it in results
    accuracy_by_noise_level: Callable  # (classifier, data, device=) -> rows of held-out accuracy per lambda bucket
    confidence_on_samples: Callable  # (classifier, images, labels) -> its accuracy and confidence on samples


NOISY_CLASSIFIER = ClassifierBaseline(network=baseline.NoisyClassifier, train=baseline.train_classifier,
                                      path=baseline.classifier_path, id=baseline.classifier_id,
                                      accuracy_by_noise_level=baseline.accuracy_by_noise_level,
                                      confidence_on_samples=baseline.confidence_on_samples)
