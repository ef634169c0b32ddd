"""Cell and suite names: plain (they name folders under the results root), and always describing
the spec they hold, overrides included (bench/suites/cells.py: renamed, unique_names)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import run_cells
from bench.spec.errors import SpecError
from bench.spec.names import check_plain_name
from bench.suites.cells import SUITES, Cell, SelectionError, select_cells, unique_names, with_steps

TINY = SUITES["tiny"].build()


@pytest.mark.parametrize("name", ["../../x", "a/b", "a\\b", "..", ".hidden", "", "a..b", "x" * 121, "a b", "/abs"])
def test_names_that_are_not_plain_are_refused_in_the_api(tmp_path, name):
    with pytest.raises(SpecError, match="not a plain name"):
        Cell(name, TINY[0].spec)
    with pytest.raises(SpecError, match="not a plain name"):
        run_cells(name, TINY[:1], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "x").exists()


@given(st.text(min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_a_plain_name_never_leaves_the_root(name):
    try:
        check_plain_name(name, "cell")
    except SpecError:
        return
    assert "/" not in name and "\\" not in name and ".." not in name and not name.startswith(".")


def test_every_suites_names_are_plain_and_unique_per_spec():
    for suite in SUITES.values():
        cells = suite.build()
        assert len({c.name for c in cells}) == len(cells), suite.name


def test_an_override_renames_the_segments_it_changes():
    names = [c.name for c in select_cells("tiny", overrides=["sample.steps=64"])]
    assert all(n.endswith("_T64") for n in names)
    assert len(names) == len(set(names)) == len(TINY) - 1  # the T4 and T8 copies of one cell are one cell now
    assert {c.name for c in select_cells("tiny", overrides=["train.p_uncond=0.3"])} >= {"cfg_p0.3_w0.5_T4"}
    assert "clf-clean_cond_p0.1_s1_T4" in {c.name for c in select_cells("tiny", overrides=["classifier.noise_aware=false"])}


def test_every_selected_name_spells_its_specs_steps():
    for override in ("sample.steps=8", "sample.steps=16"):
        for cell in select_cells("tiny", overrides=[override]):
            assert f"_T{cell.spec.sample.steps}" in cell.name


def test_two_specs_under_one_name_are_refused():
    a = TINY[0]
    with pytest.raises(SelectionError, match="two different specs are named"):
        unique_names([a, Cell(a.name, with_steps(a.spec, 99))])
    assert unique_names([a, a]) == [a]
