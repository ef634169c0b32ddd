"""The house rules that a refactor could quietly break: imports run downward through the layers,
the light modules stay light, and logs written to files carry no progress-bar redraws."""
import ast
import subprocess
import sys
from pathlib import Path

from bench import ENTRY_POINTS, LAYERS

ROOT = Path(__file__).resolve().parent.parent

def layer_of(module: str) -> int:
    """A module's layer, from its path alone: its package's place in bench.LAYERS; the bench package's
    own __init__ below everything, its entry-point modules above everything."""
    parts = module.split(".")
    if parts[0] == "baselines":
        return LAYERS.index("baselines")
    if len(parts) == 1:
        return -1
    if parts[1] in ENTRY_POINTS:
        return len(LAYERS)
    assert parts[1] in LAYERS, f"{module}: bench.{parts[1]} is neither a package of bench.LAYERS nor an entry point"
    return LAYERS.index(parts[1])


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
    upward = [f"{name} (layer {layer_of(name)}) imports {dep} (layer {layer_of(dep)})"
              for name, path in files.items() for dep in project_imports(path, name, set(files))
              if layer_of(dep) > layer_of(name)]
    assert not upward, upward


def test_bench_reaches_the_baseline_only_through_its_record():
    files = {module_name(p): p for folder in ("bench", "baselines") for p in (ROOT / folder).rglob("*.py")}
    importers = sorted(name for name, path in files.items() if name.startswith("bench")
                       and any(dep.startswith("baselines") for dep in project_imports(path, name, set(files))))
    assert importers == ["bench.sources.classifier"]


def test_every_package_of_bench_is_a_layer():
    packages = {p.parent.name for p in (ROOT / "bench").glob("*/__init__.py")}
    assert packages == set(LAYERS) - {"baselines"}


def test_light_modules_import_no_plotting_and_no_runner():
    code = ("import sys, bench.evaluation.metrics, bench.infra.store, bench.claims.gate; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'seaborn'}), "
            "any(m.startswith(('bench.report', 'bench.runner')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == ["[]", "False"]


def test_guidance_records_and_suites_load_without_torch():
    """Plans and reports read the method records and the suites on any machine: neither imports torch."""
    code = ("import sys, bench.guidance, bench.suites, bench.report.table; "
            "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == ["[]"]


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
