"""Feature extractors registered into torch-fidelity, feature extraction through it, and the
cached features of the real reference splits.

Kinds live in the FEATURES registry (name -> how to build the extractor, its feature dimension);
they are never mixed in one column (every metric records the extractor's name, which includes the
sha256 of its weights, because torch-fidelity's own cache keys ignore weights):
  evaluator  the offline evaluator CNN (bench/evaluation/evaluator.py): `features` (64-d) for
             FID/KID/PR, pre-softmax `logits` for IS.
  inception  torch-fidelity's `inception-v3-compat` with the FID Inception packaged with the
             install (bench/evaluation/inception.py; pool features, no classifier), or a full weights file
             the user names (--inception-weights PATH or $BENCH_INCEPTION_WEIGHTS); grayscale
             images are repeated to 3 channels. Nothing is ever downloaded. Its `spatial` layer gives
             sFID (Nash et al. 2021) as ADM's evaluator defines it: the tensor `mixed_6/conv` of the TF
             graph, i.e. Mixed_6d's first 1x1 convolution after its batch norm and ReLU (192 x 17 x 17),
             its first 7 channels flattened (2023-d; ADM flattens them channels-last, a permutation of
             the coordinates, which no Frechet distance sees).
  dinov2     DINOv2 ViT-L/14's class token (bench/evaluation/dinov2.py), from the official weights file
             the user names (eval.dinov2_weights), for FD_DINOv2 as EDM2 computes it.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor
from torch_fidelity.utils import create_feature_extractor

from bench.data.datasets import load_dataset
from bench.evaluation import dinov2
from bench.evaluation.evaluator import FEATURE_DIM, evaluator_key, load_evaluator
from bench.evaluation.inception import InceptionWeightsError, converted_weights, no_weights, verified_state
from bench.evaluation.runtime_choice import REFERENCE, ChosenRuntime, choose
from bench.evaluation.runtimes import RUNTIMES
from bench.infra.checkpoints import WeightsFileError, load_checkpoint, save_checkpoint
from bench.infra.store import CorruptFileError, cache_root, sha256_bytes, sha256_file
from bench.models.fastpath import native_bf16
from bench.spec.errors import BenchError
from bench.spec.hashing import to_dict
from bench.spec.registry import Registry
from bench.spec.sections import DataSpec

INCEPTION_FILE = Path(URL_INCEPTION_V3).name  # weights-inception-2015-12-05-6726825d.pth
INCEPTION_ENV = "BENCH_INCEPTION_WEIGHTS"


class FeatureError(BenchError, ValueError):
    """Unknown extractor kind or missing weights; the message says what is expected."""


SPATIAL, SPATIAL_CHANNELS = "spatial", 7  # sFID's layer and the channels ADM keeps
INCEPTION_PREPROCESSING = ("grayscale repeated to RGB; resized to 299x299 by torch-fidelity's TF1-compatible bilinear "
                           "interpolation; scaled as (x - 128) / 128")


@dataclass(frozen=True)
class Extractor:
    """A registered torch-fidelity extractor, its layer for FID/KID/PR and its logits layer for IS
    (None when the network has no classifier)."""
    name: str
    kind: str  # its FEATURES record
    fid_layer: str
    isc_layer: str | None
    sha256: str
    preprocessing: str = "uint8 images at their own size"
    fast: bool = False  # eval.fast_features: channels_last, bf16 autocast where native (features differ slightly)
    spatial_layer: str | None = None  # the layer of sFID, where the network has one

    @property
    def layers(self) -> list[str]:
        return sorted({self.fid_layer, self.isc_layer, self.spatial_layer} - {None})

    @property
    def export_key(self) -> str:
        """Names the network and the layers it returns (exports and runtime decisions are kept under it)."""
        return sha256_bytes(f"{self.sha256}:{','.join(self.layers)}".encode())


class EvaluatorFeatures(FeatureExtractorBase):
    """torch-fidelity adapter for the evaluator CNN of one dataset (set per subclass)."""
    dataset = ""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)
        self.net, _ = load_evaluator(self.dataset)

    @staticmethod
    def get_provided_features_list():
        return ("features", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "logits" if metric == "isc" else "features"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        raise NotImplementedError("the evaluator is not compiled")

    def forward(self, x):
        feats, logits = self.net.forward_both(x)
        by_name = {"features": feats, "logits": logits}
        return tuple(by_name[name] for name in self.features_list)


class InceptionGrayscaleAware(FeatureExtractorInceptionV3):
    """inception-v3-compat with a fixed local weights file (set per subclass with its sha256), read by
    us (`verified_state`: the digest, then weights_only=True); 1-channel images repeated to RGB.
    torch-fidelity's constructor unpickles whatever it is given and loads it: it is given our own
    empty dict, and the load puts the verified weights in its place."""
    weights_path = ""
    weights_sha256 = ""

    def __init__(self, name, features_list, **kwargs):
        kwargs["feature_extractor_weights_path"] = no_weights()
        super().__init__(name, features_list, **kwargs)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return super().load_state_dict(state_dict or verified_state(self.weights_path, self.weights_sha256), strict, assign)

    @staticmethod
    def get_provided_features_list():
        return (*FeatureExtractorInceptionV3.get_provided_features_list(), SPATIAL)

    def forward(self, x):
        x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
        if SPATIAL not in self.features_list:
            return super().forward(x)
        captured = []
        hook = self.Mixed_6d.branch1x1.register_forward_hook(lambda module, args, out: captured.append(out))
        wanted, self.features_list = self.features_list, [f for f in self.features_list if f != SPATIAL]
        try:
            rest = iter(super().forward(x)) if self.features_list else iter(())
        finally:
            self.features_list = wanted
            hook.remove()
        spatial = captured[0][:, :SPATIAL_CHANNELS].flatten(1).to(torch.float32)
        return tuple(spatial if f == SPATIAL else next(rest) for f in wanted)


class DinoV2Features(FeatureExtractorBase):
    """torch-fidelity adapter for the DINOv2 ViT (set per subclass with its file and sha256, re-checked here)."""
    weights_path = ""
    weights_sha256 = ""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)
        if _file_digest(self.weights_path) != self.weights_sha256:
            raise FeatureError(f"{self.weights_path} changed since it was named (sha256 differs); run again")
        self.net = dinov2.build(self.weights_path)

    @staticmethod
    def get_provided_features_list():
        return ("cls",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "cls"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        raise NotImplementedError("the DINOv2 extractor is not compiled")

    def forward(self, x):
        return (self.net(dinov2.preprocess(x)).to(torch.float32),)


@functools.lru_cache(maxsize=8)
def _digest_of(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(path)


def _file_digest(path: str) -> str:
    """sha256 of a (large) weights file, hashed once per process while it is unchanged."""
    stat = Path(path).stat()
    return _digest_of(str(path), stat.st_mtime_ns, stat.st_size)


def inception_weights_path(path: str | None = None) -> tuple[Path, str] | None:
    """The user's Inception weights file (--inception-weights or $BENCH_INCEPTION_WEIGHTS) and its
    sha256, checked to hold only tensors (read without running code); None when the user gave none
    (the packaged network is used then)."""
    given = path or os.environ.get(INCEPTION_ENV)
    how = (f"Name torch-fidelity's weights file {INCEPTION_FILE} (from {URL_INCEPTION_V3}) with --inception-weights "
           f"PATH or {INCEPTION_ENV}=PATH, or give neither to use the FID Inception packaged with the install. "
           "Nothing is ever downloaded.")
    if not given:
        return None
    if not Path(given).is_file():
        raise FeatureError(f"Inception weights file {given!r} does not exist. {how}")
    digest = sha256_file(given)
    try:
        verified_state(given, digest)
    except (WeightsFileError, InceptionWeightsError) as err:
        raise FeatureError(f"{err}. {how}") from None
    return Path(given), digest


def _register(name: str, base: type, **attrs: str) -> None:
    """Register the extractor class once per name; a later call (e.g. another cache folder holding the same
    weights) updates where its weights are read from."""
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(name, type(f"{base.__name__}_{name.replace('-', '_')}", (base,), attrs))
    for key, value in attrs.items():
        setattr(FEATURE_EXTRACTORS_REGISTRY[name], key, value)


@dataclass(frozen=True)
class FeatureKind:
    """A registered kind of features: `build(data, weights_path)` registers (once) and describes the
    extractor for a dataset; `feature_dim` is known without building it. `full_rank` asks for more
    samples than dimensions (a full-rank covariance); Inception FID is computed at smaller N too, as
    the field does, from a rank-deficient covariance that biases it upward in 1/N (compare at fixed N).
    `batch_sizes` names the extraction batch per device type where it is not DEFAULT_BATCH: on a CPU a
    299x299 Inception runs faster in small batches whose activations stay in cache, while a GPU wants
    large ones to fill it (the measurement: `python -m bench.perf --feature-batches`,
    results/perf/report.md). Features depend on the batch only through float rounding. `choose_runtime`
lets the measured decision of bench/evaluation/runtime_choice.py pick the runtime (OpenVINO, ONNX
Runtime or torch eager, all within its tolerance of eager): worth its one-off measurement only for a
network as costly as Inception."""
    build: Callable[[DataSpec, str | None], Extractor]
    feature_dim: int
    full_rank: bool
    batch_sizes: tuple[tuple[str, int], ...] = ()
    choose_runtime: bool = False

    def batch_size(self, device: str) -> int:
        """The extraction batch on `device` (cpu, cuda, cuda:N)."""
        return dict(self.batch_sizes).get(torch.device(device).type, DEFAULT_BATCH)


DEFAULT_BATCH = 256


FEATURES: Registry[FeatureKind] = Registry("feature extractor", "feature extractors", FeatureError)


def extractor_prefix(kind: str) -> str:
    """Every extractor of a kind is named with this prefix, then its dataset key and/or weights hash."""
    return f"gb-{kind}-"


def _evaluator(data: DataSpec, weights: str | None = None) -> Extractor:
    key = evaluator_key(data)
    _, manifest = load_evaluator(key)
    name = f"{extractor_prefix('evaluator')}{key}-{manifest['sha256'][:12]}"
    _register(name, EvaluatorFeatures, dataset=key)
    return Extractor(name, "evaluator", "features", "logits", manifest["sha256"])


def _inception(data: DataSpec, weights: str | None = None) -> Extractor:
    """The user's full torch-fidelity Inception (FID and IS), else the packaged FID Inception
    (bench/evaluation/inception.py: pool features only, so IS comes from the domain evaluator)."""
    user = inception_weights_path(weights)
    packaged = user is None
    path, digest = converted_weights(cache_root()) if packaged else user
    name = f"{extractor_prefix('inception')}v3-compat-{digest[:12]}"
    _register(name, InceptionGrayscaleAware, weights_path=str(path), weights_sha256=digest)
    return Extractor(name, "inception", "2048", None if packaged else "logits_unbiased", digest, INCEPTION_PREPROCESSING,
                     spatial_layer=SPATIAL)


def _dinov2(data: DataSpec, weights: str | None = None) -> Extractor:
    """The DINOv2 ViT of the file the user names (eval.dinov2_weights), refused without it."""
    path = dinov2.check_named(weights or "")
    digest = _file_digest(str(path))
    name = f"{extractor_prefix('dinov2')}{digest[:12]}"
    _register(name, DinoV2Features, weights_path=str(path), weights_sha256=digest)
    return Extractor(name, "dinov2", "cls", None, digest, dinov2.PREPROCESSING)


FEATURES.add("evaluator", FeatureKind(_evaluator, FEATURE_DIM, full_rank=True))
FEATURES.add("dinov2", FeatureKind(_dinov2, 1024, full_rank=False, batch_sizes=(("cpu", 16),)))
FEATURES.add("inception", FeatureKind(_inception, 2048, full_rank=False, batch_sizes=(("cpu", 16),), choose_runtime=True))


def get_extractor(kind: str, data: DataSpec, weights: str | None = None) -> Extractor:
    """Register (once) and describe the extractor of `kind` for the dataset (and resolution) of `data`;
    `weights` is the file the user named for it (Inception's is optional, DINOv2's required)."""
    return FEATURES[kind].build(data, weights)


_CREATED: dict[tuple[str, tuple[str, ...], str, bool], FeatureExtractorBase] = {}
_CHOSEN: dict[tuple, ChosenRuntime] = {}


def _module(extractor: Extractor, device: str) -> FeatureExtractorBase:
    """The extractor's torch-fidelity module on `device`, built once per process."""
    key = (extractor.name, tuple(extractor.layers), str(device), extractor.fast)
    if key not in _CREATED:
        module = create_feature_extractor(extractor.name, extractor.layers, cuda=False, verbose=False).eval()
        module = module.to(device)
        _CREATED[key] = module.to(memory_format=torch.channels_last) if extractor.fast else module
    return _CREATED[key]


def _fast_features(module: FeatureExtractorBase, device: str):
    """eval.fast_features: channels_last weights and bf16 autocast where the device has native bf16."""
    bf16 = native_bf16(device)[0]

    def features(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode(), torch.autocast(torch.device(device).type, torch.bfloat16, enabled=bf16):
            return tuple(y.float().cpu() for y in module(x.to(device)))
    return features


def extraction_runtime(extractor: Extractor, images: torch.Tensor, device: str = "cpu") -> ChosenRuntime:
    """The runtime that computes this extractor's features of images shaped like `images` on `device`:
    for kinds that choose one (`FeatureKind.choose_runtime`), the measured decision of
    bench/evaluation/runtime_choice.py, checked on the first of `images`; otherwise torch eager."""
    shape = tuple(images.shape[1:])
    key = (extractor.name, tuple(extractor.layers), str(device), extractor.fast, shape)
    if key not in _CHOSEN:
        module = _module(extractor, device)
        kind = FEATURES[extractor.kind]
        if extractor.fast:
            _CHOSEN[key] = ChosenRuntime("torch-eager channels_last bf16", _fast_features(module, device),
                                         "eval.fast_features")
        elif kind.choose_runtime:
            _CHOSEN[key] = choose(module, images, extractor.export_key, kind.batch_size(device), device, cache_root())
        else:
            _CHOSEN[key] = ChosenRuntime(REFERENCE, RUNTIMES[REFERENCE].build(module, shape, cache_root(), extractor.export_key),
                                         f"{extractor.kind} features run eagerly")
    return _CHOSEN[key]


def runtime_used(extractor: Extractor, shape: tuple[int, ...], device: str = "cpu") -> str:
    """The runtime this process chose for the extractor on images of `shape` ("none" before any extraction)."""
    chosen = _CHOSEN.get((extractor.name, tuple(extractor.layers), str(device), extractor.fast, tuple(shape)))
    return chosen.name if chosen is not None else "none"


def extract(extractor: Extractor, images: torch.Tensor, batch_size: int | None = None,
            device: str = "cpu") -> dict[str, torch.Tensor]:
    """Features of uint8 images (N, C, H, W) for every layer the extractor's metrics use, in fp32, in
    batches of `batch_size` (default: its kind's record for the device, `FeatureKind.batch_size`), by
    the runtime `extraction_runtime` chooses. An extractor marked `fast` runs with channels_last weights
    and bf16 autocast where the device has native bf16."""
    if images.dtype != torch.uint8:
        raise TypeError(f"feature extraction takes uint8 images, got {images.dtype}")
    runtime = extraction_runtime(extractor, images, device)
    batch = batch_size or FEATURES[extractor.kind].batch_size(device)
    outputs = [runtime.features(part) for part in images.split(batch)]
    return {layer: torch.cat([out[i] for out in outputs]) for i, layer in enumerate(extractor.layers)}


def reference_path(data: DataSpec, split: str, extractor: Extractor, cache: Path) -> Path:
    """Where the features of a real split are cached: under (dataset, split, size, extractor name+hash)."""
    key = "-".join([data.name, split, str(data.size), extractor.name]) + ("-fast" if extractor.fast else "")
    if data.root:
        key += "-" + sha256_bytes(repr(to_dict(data)).encode())[:8]
    return cache / "reference" / f"{key}.pt"


def reference_cached(data: DataSpec, split: str, kind: str, cache: Path) -> bool:
    """Whether features of the split by an extractor of `kind` are cached (any weights: for plans, which
    build no extractor)."""
    prefix = "-".join([data.name, split, str(data.size), extractor_prefix(kind)])
    return any((cache / "reference").glob(f"{prefix}*.pt"))


_REFERENCES: dict[Path, tuple[tuple[int, int], dict[str, torch.Tensor]]] = {}


def reference_features(data: DataSpec, split: str, extractor: Extractor, cache: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Features of a real split, computed once and cached (`reference_path`), and read (with its sha256
    check) once per process: every cell that uses them shares the tensors while the file is unchanged."""
    path = reference_path(data, split, extractor, cache)
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None
    if stamp is not None and path in _REFERENCES and _REFERENCES[path][0] == stamp:
        return _REFERENCES[path][1]
    if stamp is not None:
        try:
            feats = load_checkpoint(path)["state_dict"]
            missing = sorted(set(extractor.layers) - set(feats))
            if not missing:
                _REFERENCES[path] = (stamp, feats)
                return feats
            print(f"recomputing reference features: {path.name} lacks the layers {', '.join(missing)}")
        except CorruptFileError as err:
            print(f"recomputing reference features: {err}")
    images = load_dataset(data, split).images
    feats = extract(extractor, images, device=device)
    save_checkpoint(path, feats, {"reference": path.stem}, runtime=extraction_runtime(extractor, images, device).name)
    _REFERENCES[path] = ((path.stat().st_mtime_ns, path.stat().st_size), feats)
    return feats
