"""Sampling: the solvers (ancestral, DDIM) over an eps_fn, NFE counted by running them, and a cell's
guided sampling with per-sample seed streams.
"""
