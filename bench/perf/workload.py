"""What the perf experiments measure: the mnist suite's network, image shape, sampling steps, cell size
and training, read from the suite itself (bench/suites/paper.py), so the measurements follow the suite."""
from __future__ import annotations

from bench.data.datasets import nominal_shape
from bench.suites.paper import MNIST_BASE

MNIST_NET = MNIST_BASE.net
SHAPE = nominal_shape(MNIST_BASE.data)
STEPS = MNIST_BASE.sample.steps
CELL_SAMPLES = MNIST_BASE.sample.num_samples
MNIST_TRAIN = (MNIST_BASE.train.batch_size, MNIST_BASE.train.steps)  # the batch and steps of one model's training
QUALITY_METRICS = ("fid", "is_mean", "class_accuracy")
