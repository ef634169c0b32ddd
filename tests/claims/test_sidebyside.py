"""Two suites' best cells side by side: each suite's own best CFG cell per p_uncond, the paired difference, and a
verdict only outside the noise."""
import pandas as pd

from bench.claims.sidebyside import best_beside


class Margins:
    def difference(self, a, b, metric):
        diff = a[metric] - b[metric]
        return {"difference": diff, "lo": diff - 0.1, "hi": diff + 0.1, "paired": True}


def _suite(prefix, fids):
    return pd.DataFrame([{"cell": f"{prefix}_p{p:g}_w{w:g}", "method": "cfg", "p_uncond": p, "w": w, "strength": w,
                          "steps": 32, "seed": 0, "fid": fid} for (p, w), fid in fids.items()])


def test_each_suites_own_best_is_compared_and_judged_outside_the_noise():
    flow = _suite("flow", {(0.2, 0.0): 3.0, (0.2, 0.3): 2.0, (0.5, 0.3): 4.0})
    eps = _suite("eps", {(0.2, 0.0): 2.5, (0.2, 1.0): 2.6, (0.5, 0.3): 3.95, (0.1, 0.3): 1.0})
    rows = best_beside(flow, eps, metrics=("fid", "fid_inception"), replicates=Margins()).set_index("p_uncond")
    assert list(rows.index) == [0.2, 0.5]  # only the p_uncond both swept; no Inception column in either
    assert rows.loc[0.2, "this suite's best"] == "flow_p0.2_w0.3 (2.000)"
    assert rows.loc[0.2, "the other's best"] == "eps_p0.2_w0 (2.500)"
    assert rows.loc[0.2, "verdict"] == "lower" and rows.loc[0.5, "verdict"] == "equal within the noise"
