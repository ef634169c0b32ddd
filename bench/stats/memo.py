"""Values computed once per tensor: what every cell shares, such as the statistics of a reference
set's features, which the process holds once (bench/evaluation/features.py: reference_features).

`per_tensor(fn)` caches fn(t) by the tensor object itself and its version counter (an in-place change
computes it again); an entry goes when its tensor is freed, so a new tensor can never be served an old
tensor's value. (Inference tensors carry no version counter; they cannot be changed outside
inference mode, and nothing here changes features in place.)"""
from __future__ import annotations

import functools
import weakref
from typing import Callable, TypeVar

import torch

T = TypeVar("T")


def per_tensor(fn: Callable[[torch.Tensor], T]) -> Callable[[torch.Tensor], T]:
    cache: dict[int, tuple[int, T]] = {}

    @functools.wraps(fn)
    def cached(t: torch.Tensor) -> T:
        key, version = id(t), -1 if t.is_inference() else t._version  # inference tensors have no counter
        if key in cache and cache[key][0] == version:
            return cache[key][1]
        if key not in cache:
            weakref.finalize(t, cache.pop, key, None)
        cache[key] = (version, fn(t))
        return cache[key][1]
    cached.cache = cache  # for tests: what is held
    return cached
