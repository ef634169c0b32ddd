"""A suite's table: one row per stored cell, its identifying columns derived from the cell's spec
and the method records (so cells stored before a record changed are labelled as new ones are),
then every metric column in a fixed order. Written as results/<suite>/table.csv."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.claims.sweeps import main_sweep
from bench.guidance import describe, method_needs
from bench.infra.store import atomic_write_bytes, load_runs, read_json
from bench.report.legacy import with_current_intervals
from bench.spec.hashing import from_dict
from bench.spec.sections import RunSpec

ID_COLUMNS = ["cell", "method", "method_label", "strength_param", "strength", "base", "noise_aware", "p_uncond", "w", "scale", "prediction", "sampler", "time_grid", "steps", "guidance_space", "off_paper_space", "seed", "num_samples"]

FRECHET_METRICS = ["fid", "fid_inception", "fid_domain", "sfid", "fd_dinov2"]

INTERVAL_METRICS = [*FRECHET_METRICS, "is_mean", "kid_mean", "precision", "recall", "density", "coverage", "class_accuracy"]

# each Frechet distance at N -> inf with its interval, and Chong & Forsyth's extrapolation beside it
EXTRAPOLATED = [*(c for m in FRECHET_METRICS for c in (f"{m}_inf", f"{m}_inf_lo", f"{m}_inf_hi", f"{m}_cf_inf", f"{m}_cf_inf_se")),
                "is_cf_inf", "is_cf_inf_se"]

METRIC_COLUMNS = [*(c for m in INTERVAL_METRICS for c in (m, f"{m}_lo", f"{m}_hi")), *EXTRAPOLATED, "interval_method",
                  "fid_cleanfid", "fid_inception_cleanfid", "is_std", "bootstrap_draws", "evaluator_confidence", "guidance_classifier_accuracy", "guidance_classifier_confidence",
                  "gap_accuracy", "gap_confidence", "images_per_second", "nfe_per_image", "classifier_evals_per_image", "guide_evals_per_image",
                  "sampling_seconds", "network_seconds", "classifier_seconds", "other_seconds", "model_seconds",
                  "metrics_seconds", "extractor", "is_extractor", "inception_extractor", "domain_extractor", "dinov2_extractor",
                  "reference_stats", "protocol", "run_id"]


def cell_columns(spec: RunSpec) -> dict:
    """Tidy identifying columns for the suite's table: the guidance record's (method, label,
    strength), the classifier's kind where the method uses one, and the sampling setup."""
    guidance = describe(spec.guidance)
    needs = method_needs(spec.guidance.method, spec.guidance.kwargs())
    if "noisy_classifier" in needs:
        guidance["method_label"] += f", {'noisy' if spec.classifier.noise_aware else 'clean'} classifier"
    if "guide" in needs:
        kind = "unconditional " if spec.guide.p_uncond == 1 else ""
        guidance["method_label"] += f", {kind}guide {spec.guide.channels} ch / {spec.guide.steps} steps"
    return {**guidance, "p_uncond": spec.train.p_uncond, "sampler": spec.sample.sampler, "steps": spec.sample.steps,
            "time_grid": spec.sample.grid, "prediction": model_prediction(spec), "dataset": spec.data.name,
            "model_source": spec.model.source}


def model_prediction(spec: RunSpec) -> str:
    """What the cell's network predicts: train.objective for a model trained here, else model.prediction."""
    return spec.train.objective if spec.model.source == "trained" else spec.model.prediction


def with_record_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Method label and strength of every cell from its stored spec and the method records, so
    cells stored before the records existed are labelled as new ones are."""
    columns = [cell_columns(from_dict(RunSpec, read_json(Path(row.run_dir) / "spec.json"))) for row in table.itertuples()]
    for key in ("method_label", "strength_param", "strength", "time_grid", "prediction", "guidance_space", "off_paper_space"):
        table[key] = [c[key] for c in columns]
    return table

UNGUIDED = "unguided (strength 0)"

def throughput_table(table: pd.DataFrame) -> pd.DataFrame:
    """images/s per method at the default steps, and cost per image relative to the unguided cells
    (every method at strength 0, which evaluates the conditional model once per step)."""
    main, _, _ = main_sweep(table)
    main = main.assign(group=np.where(main.strength.fillna(0) == 0, UNGUIDED, main.method_label))
    out = main.groupby("group").agg(images_per_second=("images_per_second", "median"),
                                    nfe_per_image=("nfe_per_image", "median"),
                                    classifier_evals_per_image=("classifier_evals_per_image", "median"),
                                    overhead_fraction=("other_seconds", "sum")).reset_index()
    network = main.groupby("group")[["network_seconds", "classifier_seconds"]].sum().sum(axis=1).values
    out["overhead_fraction"] = out.overhead_fraction.values / np.maximum(network, 1e-12)
    unguided = out.loc[out.group == UNGUIDED, "images_per_second"]
    out["cost_vs_unguided"] = unguided.iloc[0] / out.images_per_second if len(unguided) else np.nan
    return out.sort_values("cost_vs_unguided")


def suite_table(suite_dir: Path, extra: list[Path] = ()) -> pd.DataFrame:
    """The stored cells of a suite (and of more result folders merged in) with their record columns
    and every metric column (empty where a suite's networks do not give it, e.g. IS without a classifier)."""
    table = with_current_intervals(with_record_columns(load_runs(suite_dir, *extra)))
    for column in METRIC_COLUMNS:
        if column not in table:
            table[column] = np.nan
    return table


def write_table(table: pd.DataFrame, path: Path) -> None:
    """table.csv: the identifying columns, then the metrics, in their fixed order."""
    columns = [c for c in ID_COLUMNS + METRIC_COLUMNS if c in table]
    atomic_write_bytes(path, table[columns].to_csv(index=False).encode())
