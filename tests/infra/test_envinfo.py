"""env.json's provenance (bench/infra/envinfo.py): the commit of the code that ran, wherever it runs from."""
import subprocess

from bench.infra import envinfo


def test_the_commit_is_the_codes_not_the_current_directorys(tmp_path, monkeypatch):
    ours = subprocess.run(["git", "-C", str(envinfo.CODE_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    other = tmp_path / "other"
    other.mkdir()
    for cmd in (["init", "-q"], ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", "-C", str(other), *cmd], check=True)
    theirs = subprocess.run(["git", "-C", str(other), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(other)
    commit = envinfo._git_commit()
    assert theirs not in commit
    if ours.returncode == 0:  # a clone: its HEAD; an installed copy has no repository of its own
        assert commit.removesuffix("+dirty") == ours.stdout.strip()


def test_code_outside_a_repository_records_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(envinfo, "CODE_ROOT", tmp_path)
    monkeypatch.setenv("BENCH_GIT_COMMIT", "abc123")
    assert envinfo._git_commit() == "abc123"
