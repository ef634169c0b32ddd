"""Model sources: where a cell's diffusion model (and, optionally, its noisy classifier) comes from.

One file and one record per source (bench/sources/base.py: `Source`): `trained` (the harness trains
it from the spec), `adm` (a guided-diffusion checkpoint), `diffusers` (a save_pretrained folder of a
UNet2DModel or a latent DiT) and `callable` (a function of the user's that returns a network). Each
pretrained network is adapted to the suite's eps_fn(z, lambda, labels) (bench/sources/noise.py).
A record's `check` validates a spec without loading weights (for --dry-run and before any work); its
`load` builds the pieces. Every module here is imported, so a new source is a new file that calls
`register_source`.
"""
from bench.sources.base import SOURCES, LoadedModel, Source, SourceError, check_source, load_model, register_source
from bench.spec.registry import import_submodules

import_submodules(__name__)

__all__ = ["SOURCES", "LoadedModel", "Source", "SourceError", "check_source", "load_model", "register_source"]
