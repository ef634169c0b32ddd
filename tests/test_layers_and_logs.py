"""The house rules that a refactor could quietly break: imports run downward through the layers,
the light modules stay light, and logs written to files carry no progress-bar redraws."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# spec -> files, data, nets -> samplers, guidance -> features -> metrics -> pipeline -> CLI, gate, perf, figures
LAYERS = {
    0: ["bench", "bench.errors", "bench.registry", "bench.config", "bench.overrides", "bench.suites"],
    1: ["bench.store", "bench.distributed", "bench.progress", "bench.envinfo", "bench.grids", "bench.data",
        "bench.diffusion", "bench.unet", "bench.evaluator", "bench.train", "bench.fastpath", "baselines",
        "baselines.noisy_classifier", "bench.stages", "bench.roofline", "bench.autotune", "bench.sources",
        "bench.sources.noise", "bench.sources.adm", "bench.sources.hub"],
    2: ["bench.samplers", "bench.guidance", "bench.guidance.base", "bench.guidance.registry", "bench.guidance.basic",
        "bench.guidance.cfg", "bench.guidance.apg", "bench.guidance.interval", "bench.guidance.classifier",
        "bench.guidance.autoguidance", "bench.guidance.cfgpp", "bench.guidance.cfg_zero_star", "bench.guidance.rescaled",
        "bench.guidance.schedule",
        "bench.sampling"],
    3: ["bench.inception", "bench.features"],
    4: ["bench.metrics", "bench.bootstrap", "bench.extrapolate", "bench.uncertainty", "bench.scoring", "bench.paired",
        "bench.verdicts", "bench.power"],
    5: ["bench.pipeline", "bench.plan"],
    6: ["bench.run", "bench.regression", "bench.perf", "bench.figures", "bench.draws"],
}
LAYER = {module: layer for layer, modules in LAYERS.items() for module in modules}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, name: str, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
                break
    return found


def test_imports_run_downward_through_the_layers():
    files = {module_name(p): p for folder in ("bench", "baselines") for p in (ROOT / folder).rglob("*.py")}
    unplaced = sorted(set(files) - set(LAYER))
    assert not unplaced, f"place these modules in a layer: {unplaced}"
    upward = [f"{name} (layer {LAYER[name]}) imports {dep} (layer {LAYER[dep]})"
              for name, path in files.items() for dep in project_imports(path, name, set(files))
              if LAYER[dep] > LAYER[name]]
    assert not upward, upward


def test_light_modules_import_no_plotting_and_no_pipeline():
    code = ("import sys, bench.metrics, bench.store, bench.regression; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'seaborn'}), "
            "'bench.figures' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == ["[]", "False"]


def test_logs_written_to_a_file_have_no_bar_redraws(tmp_path, cache_dir):
    log = tmp_path / "log.txt"
    cmd = [sys.executable, "-m", "bench.run", "--suite", "tiny", "--only", "clf-*", "--out", str(tmp_path / "out")]
    with open(log, "w") as f:
        assert subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT).returncode == 0
    text = log.read_text()
    assert "\r" not in text and "it/s" not in text and "\x1b[" not in text
    lines = text.splitlines()
    stage_lines = [line for line in lines if " steps in " in line or " batches in " in line]
    assert [line.split(":")[0] for line in stage_lines] == [
        "train digits p_uncond=0.1", "train classifier digits noise_aware=True", "sample 72 images"], stage_lines
    assert "loss=" in stage_lines[0] and len(lines) < 40
    quiet = subprocess.run([*cmd, "--quiet", "--force", "--no-report"], capture_output=True, text=True, cwd=ROOT)
    assert quiet.returncode == 0 and " steps in " not in quiet.stdout + quiet.stderr
