"""A new guidance method is one file (plus its test), and so is a new model source: a record in a module
of a package is registered when the package's modules are imported, the methods suite runs its
examples, and nothing else names it. Proved with throw-away packages written here."""
import sys
import textwrap

import pytest

from bench.guidance import METHODS, describe, make_guidance, stub_context
from bench.sampling.nfe import count_evaluations
from bench.sources import SOURCES, check_source
from bench.spec.registry import import_submodules
from bench.spec.sections import GuidanceSpec, ModelSpec
from bench.suites.cells import select_cells

METHOD_FILE = '''
"""Half-strength CFG, a throw-away method for the discovery test."""
from bench.guidance.base import cond_and_uncond
from bench.guidance.registry import Example, register_guidance


@register_guidance("half_cfg", label="half CFG", strength="w", needs=("null_label",),
                   examples=(Example("w1", (("w", 1.0),)), Example("w2", (("w", 2.0),))))
def half_cfg(ctx, w: float = 1.0):
    def eps_fn(z, lam, labels):
        cond, uncond = cond_and_uncond(ctx, z, lam, labels)
        return uncond.lerp(cond, 1.0 + w / 2)
    return eps_fn
'''

SOURCE_FILE = '''
"""A throw-away model source for the discovery test: nothing to load, every spec accepted."""
from bench.sources.base import Source, register_source

register_source(Source(name="nowhere", check=lambda spec, num_classes: None, null_label=lambda spec: None,
                       untrained=lambda spec, net, shape, num_classes: None))
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A package `plugins_<n>` holding the given files, importable, with the registries restored after."""
    monkeypatch.setattr(METHODS, "_items", dict(METHODS._items))
    monkeypatch.setattr(SOURCES, "_items", dict(SOURCES._items))
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(name: str, files: dict[str, str]) -> str:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "__init__.py").write_text("")
        for module, text in files.items():
            (folder / f"{module}.py").write_text(textwrap.dedent(text))
        written.append(name)
        return name
    yield write
    for name in written:
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


def test_a_method_file_registers_itself_and_joins_the_methods_suite(plugin):
    before = select_cells("methods")
    assert import_submodules(plugin("plugins_methods", {"half_cfg": METHOD_FILE})) == ["half_cfg"]
    assert "half_cfg" in METHODS
    cells = select_cells("methods")
    added = [c.name for c in cells if c.spec.guidance.method == "half_cfg"]
    assert added == ["half_cfg_w1_p0.2_T32", "half_cfg_w2_p0.2_T32"] and len(cells) == len(before) + 2
    assert describe(GuidanceSpec("half_cfg", (("w", 2.0),)))["method_label"] == "half CFG"
    assert count_evaluations(GuidanceSpec("half_cfg", (("w", 2.0),)), steps=4, sampler="ddim")["nfe"] == 8
    make_guidance("schedule", stub_context(), inner="half_cfg", inner_params=(("w", 1.0),))  # wrappers take it


def test_a_source_file_registers_itself(plugin):
    import_submodules(plugin("plugins_sources", {"nowhere": SOURCE_FILE}))
    assert check_source(ModelSpec(source="nowhere"), 10).name == "nowhere"
