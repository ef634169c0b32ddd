import pytest
import torch

from bench.infra.store import CorruptFileError, atomic_write_json, read_json
from bench.infra.checkpoints import load_cached_weights, load_checkpoint, save_checkpoint


def test_checkpoint_round_trip_and_corruption_is_refused(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, {"w": torch.arange(4.0)}, {"spec": 1}, step=3)
    ckpt = load_checkpoint(path)
    assert torch.equal(ckpt["state_dict"]["w"], torch.arange(4.0)) and ckpt["spec"] == {"spec": 1} and ckpt["step"] == 3
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    with pytest.raises(CorruptFileError, match="does not match"):
        load_checkpoint(path)
    (tmp_path / "m.pt.sha256").unlink()
    with pytest.raises(CorruptFileError, match="no sha256"):
        load_checkpoint(path)


def test_a_corrupt_cache_entry_means_retrain_not_trust(tmp_path, capsys):
    module = torch.nn.Linear(2, 2)
    assert not load_cached_weights(module, tmp_path / "absent.pt")
    save_checkpoint(tmp_path / "c.pt", torch.nn.Linear(2, 2).state_dict(), {})
    assert load_cached_weights(module, tmp_path / "c.pt")
    (tmp_path / "c.pt").write_bytes(b"garbage")
    assert not load_cached_weights(module, tmp_path / "c.pt")
    assert "retraining" in capsys.readouterr().out


def test_atomic_json_leaves_no_temporary_files(tmp_path):
    atomic_write_json(tmp_path / "a" / "m.json", {"x": 1})
    assert read_json(tmp_path / "a" / "m.json") == {"x": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["m.json"]
