"""The solver verdicts: cells matched by their unguided network budget (Heun's 2T - 1 beside T), a winner only
where the paired interval excludes 0, and whether guidance helps per solver and NFE."""
import pandas as pd

from bench.claims.solvers import guidance_by_solver, matched_nfe, solver_answers, solver_wins


class Margins:
    """Paired differences a - b as the test states them, keyed by the two cells' names."""

    def __init__(self, margins):
        self.margins = margins

    def difference(self, a, b, metric):
        diff, half = self.margins.get((a.cell, b.cell), (a[metric] - b[metric], 0.05))
        return {"difference": diff, "lo": diff - half, "hi": diff + half, "paired": True}


def _table():
    rows = []
    for sampler, steps, nfe in (("ddim", 8, 8), ("heun", 4, 7), ("dpmpp_2m", 8, 8)):
        for w, fid in ((0.0, {"ddim": 5.0, "heun": 4.0, "dpmpp_2m": 3.0}[sampler]), (0.3, 2.5)):
            rows.append({"cell": f"{sampler}_w{w:g}", "method": "cfg", "strength": w, "prediction": "eps",
                         "sampler": sampler, "steps": steps, "nfe_per_image": nfe * (2 if w else 1), "fid": fid})
    return pd.DataFrame(rows)


def test_heuns_budget_meets_the_others_and_cfg_counts_half():
    table = _table()
    assert set(matched_nfe(table)) == {8}


def test_a_solver_wins_only_outside_the_noise():
    wins = solver_wins(_table(), replicates=Margins({("dpmpp_2m_w0.3", "ddim_w0.3"): (0.0, 0.2)}))
    by_w = wins.set_index("w")
    assert by_w.loc[0.0, "verdict"] == "dpmpp_2m wins"  # 3.0 - 4.0 = -1 with half-width 0.05
    assert by_w.loc[0.3, "verdict"].endswith("within the noise")
    guidance = guidance_by_solver(_table(), replicates=Margins({}))
    assert set(guidance.better) == {"w=0.3"} and len(guidance) == 3
    lines = solver_answers(wins, guidance)
    assert "1 of 2 comparisons have a winner outside the noise" in lines[0] and "no clear move" in lines[1]
