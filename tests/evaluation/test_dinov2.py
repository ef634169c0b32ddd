"""FD_DINOv2's extractor on random ViTs saved in the official dinov2_vitl14_pretrain.pth layout: strict
load, features independent of the batch, FD equal to scipy's on the same features, and the refusals."""
import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.linalg
import torch

from bench.evaluation import dinov2
from bench.evaluation.features import extract, get_extractor
from bench.evaluation.metrics import fid_and_stats
from bench.spec.sections import DataSpec

DATA = DataSpec(name="digits", size=8)


def official_layout(embed_dim: int, depth: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random ViT/14 state dict with the keys and shapes of the official file (518 px: 37 x 37 positions)."""
    from timm.models.vision_transformer import VisionTransformer
    torch.manual_seed(seed)
    net = VisionTransformer(img_size=518, patch_size=14, embed_dim=embed_dim, depth=depth, num_heads=max(embed_dim // 64, 1),
                            init_values=1e-5, num_classes=0)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    for key in [k for k in state if k.endswith("ls1.gamma") or k.endswith("ls2.gamma")]:
        state[key] = torch.rand_like(state[key])  # visible LayerScale, so a missed load would show
    return {**state, "mask_token": torch.zeros(1, embed_dim)}


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dinov2") / dinov2.DINOV2_FILE
    torch.save(official_layout(64, 2), path)
    return path


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_the_official_layout_loads_strictly_and_sizes_the_network(tiny_file):
    net = dinov2.build(tiny_file)
    assert net.embed_dim == 64 and len(net.blocks) == 2 and net.pos_embed.shape == (1, 257, 64)
    state = torch.load(tiny_file, weights_only=True)
    assert torch.equal(net.blocks[1].ls2.gamma.detach(), state["blocks.1.ls2.gamma"])


def test_position_grid_is_resampled_as_dinov2_does():
    grid = torch.randn(1, 1 + 37 * 37, 8)
    out = dinov2.resample_position_grid(grid, 37, 16)
    expected = torch.nn.functional.interpolate(grid[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2),
                                               scale_factor=16.1 / 37, mode="bicubic", antialias=False)
    assert out.shape == (1, 257, 8) and torch.equal(out[:, 0], grid[:, 0])
    assert torch.allclose(out[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 256, 8))


def test_features_do_not_depend_on_the_batch_and_name_the_weights(tiny_file):
    extractor = get_extractor("dinov2", DATA, str(tiny_file))
    x = images(10)
    whole, parts = extract(extractor, x, batch_size=10)["cls"], extract(extractor, x, batch_size=3)["cls"]
    assert whole.shape == (10, 64) and torch.allclose(whole, parts, atol=1e-5)
    assert extractor.sha256[:12] in extractor.name and extractor.name.startswith("gb-dinov2-")


def test_fd_dinov2_equals_scipy_on_the_same_features(tiny_file):
    extractor = get_extractor("dinov2", DATA, str(tiny_file))
    a, b = (extract(extractor, images(90, seed))["cls"].double() for seed in (1, 2))
    mu_a, mu_b, s_a, s_b = a.mean(0).numpy(), b.mean(0).numpy(), np.cov(a.numpy().T), np.cov(b.numpy().T)
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b).real)
    assert fid_and_stats(a, b)["fid"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("change", ["extra key", "missing key", "wrong patch", "not tensors"])
def test_a_file_not_in_the_layout_is_refused(tmp_path, change):
    state = official_layout(64, 1)
    if change == "extra key":
        state["head.weight"] = torch.zeros(10, 64)
    elif change == "missing key":
        del state["blocks.0.ls1.gamma"]
    elif change == "wrong patch":
        state["patch_embed.proj.weight"] = torch.zeros(64, 3, 16, 16)
    path = tmp_path / "w.pth"
    if change == "not tensors":
        path.write_bytes(b"not a weights file")
    else:
        torch.save(state, path)
    with pytest.raises(dinov2.DinoV2WeightsError):
        dinov2.build(path)


def test_without_the_file_a_cell_exits_2_fast_naming_it(tmp_path):
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "bench.run", "--suite", "smoke", "--set", "eval.features=dinov2",
                          "--set", f"eval.dinov2_weights={tmp_path / 'absent.pth'}", "--out", str(tmp_path / "r")],
                         capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert dinov2.DINOV2_FILE in out.stderr and dinov2.DINOV2_URL in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
    assert time.perf_counter() - start < 2.0  # checked before torch loads (its import alone takes longer)


@pytest.mark.slow
def test_a_real_shape_vit_l14_loads_and_gives_1024_d_features(tmp_path):
    path = tmp_path / dinov2.DINOV2_FILE
    torch.save(official_layout(1024, 24), path)
    net = dinov2.build(path)
    assert sum(p.numel() for p in net.parameters()) > 3e8 and net.blocks[0].attn.num_heads == 16
    with torch.inference_mode():
        assert net(dinov2.preprocess(images(2))).shape == (2, 1024)
