"""Figures (seaborn, PNG) from stored results; nothing here recomputes a metric."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .store import atomic_write_bytes  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_classifier_accuracy(table: pd.DataFrame, path: Path) -> None:
    """Guidance-classifier held-out accuracy against the noise level (centre of each lambda bucket)."""
    data = table.assign(lam=(table.lambda_low.clip(-20, 20) + table.lambda_high.clip(-20, 20)) / 2)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sns.lineplot(data=data, x="lam", y="accuracy", hue="noise_aware", marker="o", ax=ax)
    ax.axhline(0.1, ls=":", c="grey", label="chance (10 classes)")
    ax.set(xlabel="log-SNR λ (bucket centre)", ylabel="held-out accuracy", ylim=(0, 1.02),
           title="guidance classifier accuracy by noise level")
    save_figure(fig, path)
