"""The adversarial gap (the paper's question: does classifier guidance fool its own classifier?):
the guidance classifier's accuracy and confidence on the samples minus the independent evaluator's."""
from __future__ import annotations

import torch

from bench.sources.classifier import NOISY_CLASSIFIER


def adversarial_gap(classifier: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, quality: dict) -> dict:
    """How much more the guidance classifier believes the samples than the independent evaluator
    (the paper's question: does classifier guidance fool its own classifier?)."""
    own = NOISY_CLASSIFIER.confidence_on_samples(classifier, images, labels)
    if "class_accuracy" in quality:
        own["gap_accuracy"] = own["guidance_classifier_accuracy"] - quality["class_accuracy"]
        own["gap_confidence"] = own["guidance_classifier_confidence"] - quality["evaluator_confidence"]
    return own
