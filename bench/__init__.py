"""guidance-bench: classifier-free guidance (Ho & Salimans) against noisy-classifier
guidance (Dhariwal & Nichol) under one harness: train, sample, measure, plot."""

__version__ = "0.1.0"
