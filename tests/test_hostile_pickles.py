"""No weights file runs code: a pickle whose load would write a marker file is placed in every place
the harness reads weights from (the converted-Inception cache, --inception-weights, cached
checkpoints and reference features, the committed evaluator, model sources' checkpoints and
diffusers folders). Each must be refused in one line (or recomputed, where the file is our cache)
and the marker must not exist. The first test proves the pickle does run code when loaded the
unsafe way, so these tests can fail."""
import io
import json

import pytest
import torch

from bench.evaluation import inception
from bench.evaluation.evaluator import load_evaluator
from bench.evaluation.features import FeatureError, get_extractor, inception_weights_path
from bench.infra.checkpoints import WeightsFileError, load_cached_weights, load_checkpoint, read_tensors
from bench.infra.store import CorruptFileError, atomic_write_bytes, sha256_bytes
from bench.sources import load_model
from bench.sources.base import SourceError
from bench.spec.sections import DataSpec, ModelSpec


class Payload:
    """Unpickling this writes `marker`: what a hostile checkpoint would do with os.system."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def hostile_blob(marker, wrap=lambda payload: {"state_dict": {"weight": payload}, "spec": "{}"}) -> bytes:
    buffer = io.BytesIO()
    torch.save(wrap(Payload(marker)), buffer)
    return buffer.getvalue()


def plant(path, marker, *, sidecar: bool = True, **kwargs) -> None:
    """A hostile pickle at `path`, with a matching sha256 sidecar (the integrity check passes)."""
    blob = hostile_blob(marker, **kwargs)
    atomic_write_bytes(path, blob)
    if sidecar:
        atomic_write_bytes(f"{path}.sha256", (sha256_bytes(blob) + "\n").encode())


def test_the_payload_runs_code_when_loaded_unsafely(tmp_path):
    marker = tmp_path / "ran"
    torch.load(io.BytesIO(hostile_blob(marker)), weights_only=False)
    assert marker.read_text() == "ran"


def test_read_tensors_refuses_it_in_one_line(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(WeightsFileError) as err:
        read_tensors(hostile_blob(marker), "evil.pt")
    assert "\n" not in str(err.value) and "nothing in it ran" in str(err.value) and "weights_only=False" not in str(err.value)
    assert not marker.exists()


def test_a_cached_checkpoint_with_a_matching_sha256_is_refused_and_retrained(tmp_path):
    marker = tmp_path / "ran"
    plant(tmp_path / "model.pt", marker)
    with pytest.raises(CorruptFileError, match="model.pt"):
        load_checkpoint(tmp_path / "model.pt")
    assert load_cached_weights(torch.nn.Linear(2, 2), tmp_path / "model.pt") is False  # retrain, never run
    assert not marker.exists()


def test_the_converted_inception_cache_is_converted_again(tmp_path, capsys):
    marker = tmp_path / "ran"
    plant(tmp_path / "inception" / inception.CONVERTED_NAME, marker, wrap=lambda p: {"fc.weight": p})
    path, digest = inception.converted_weights(tmp_path)
    assert "converting the packaged Inception again" in capsys.readouterr().out
    assert digest == sha256_bytes(path.read_bytes()) and not marker.exists()
    assert len(inception.verified_state(path, digest)) > 300


def test_an_inception_weights_file_is_refused_before_any_work(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    plant(tmp_path / "evil.pth", marker, sidecar=False, wrap=lambda p: {"fc.weight": p})
    with pytest.raises(FeatureError) as err:
        inception_weights_path(str(tmp_path / "evil.pth"))
    assert "evil.pth" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FeatureError):
        get_extractor("inception", DataSpec(name="digits"), str(tmp_path / "evil.pth"))
    assert not marker.exists()


def test_the_evaluator_weights_with_a_matching_manifest_are_refused(tmp_path):
    marker = tmp_path / "ran"
    blob = hostile_blob(marker, wrap=lambda p: {"conv.weight": p})
    (tmp_path / "digits.pt").write_bytes(blob)
    (tmp_path / "digits.json").write_text(json.dumps({"sha256": sha256_bytes(blob), "in_channels": 1, "num_classes": 10}))
    with pytest.raises(WeightsFileError, match="digits.pt"):
        load_evaluator("digits", tmp_path)
    assert not marker.exists()


def test_a_model_sources_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "ran"
    plant(tmp_path / "adm.pt", marker, sidecar=False, wrap=lambda p: {"input_blocks.0.0.weight": p})
    with pytest.raises(SourceError, match="adm.pt is not a weights file"):
        load_model(ModelSpec(source="adm", path=str(tmp_path / "adm.pt"), config="tiny"), (3, 8, 8), 10, "cpu")
    assert not marker.exists()


def test_a_diffusers_folders_bin_is_refused(tmp_path):
    diffusers = pytest.importorskip("diffusers", reason="the diffusers source is an optional extra")
    marker = tmp_path / "ran"
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(32, 32),
                                 down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                                 norm_num_groups=8, layers_per_block=1, num_class_embeds=11)
    unet.save_pretrained(tmp_path / "unet", safe_serialization=False)
    plant(tmp_path / "unet" / "diffusion_pytorch_model.bin", marker, sidecar=False, wrap=lambda p: {"conv_in.weight": p})
    with pytest.raises(SourceError, match="diffusion_pytorch_model.bin is not a weights file"):
        load_model(ModelSpec(source="diffusers", path=str(tmp_path / "unet"), null_label=10), (1, 8, 8), 10, "cpu")
    assert not marker.exists()


@pytest.mark.parametrize("blob", [b"", b"\x00" * 64, b"PK\x03\x04 not a zip", bytes(range(256)) * 4])
def test_random_bytes_give_one_line_without_pytorchs_advice(tmp_path, blob):
    (tmp_path / "w.pt").write_bytes(blob)
    with pytest.raises(WeightsFileError) as err:
        read_tensors(tmp_path / "w.pt")
    assert "\n" not in str(err.value) and "weights_only=False" not in str(err.value) and "w.pt" in str(err.value)
