"""Suites: named lists of cells (name + RunSpec), selection by glob, overrides and shard (cells.py);
the paper's suites (paper.py), the methods frontier generated from the guidance records (methods.py)
and presets for a GPU or a pretrained model (presets.py). Every module here is imported, so a new
suite is a new file that registers itself.
"""
from bench.spec.registry import import_submodules

import_submodules(__name__)
