"""The loss curve, as JSON (for tools and comparisons) and PNG (for a person).

Written from the trainer's ``log_history`` after training, so it costs nothing during the run
and works the same for SFT and DPO (both log ``loss`` every ``logging_steps``). With eval
data (``--eval-data``, ``--eval-fraction``) the PNG draws the eval loss beside it; its
points are in metrics.json's ``log_history`` (``eval_loss``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def loss_points(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """One point per logged training step: step, epoch, loss, learning rate (when logged).

    The final summary entry (``train_loss``) is not a point: it has no ``loss`` key.
    """
    points = []
    for entry in log_history:
        if "loss" not in entry or "step" not in entry:
            continue
        point = {"step": int(entry["step"]), "loss": float(entry["loss"])}
        for key in ("epoch", "learning_rate", "grad_norm"):
            if key in entry and entry[key] is not None:
                point[key] = float(entry[key])
        points.append(point)
    return points


def eval_points(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """One point per evaluation: step and eval loss."""
    return [
        {"step": int(entry["step"]), "eval_loss": float(entry["eval_loss"])}
        for entry in log_history
        if "eval_loss" in entry and "step" in entry
    ]


def write_loss_curve(
    log_history: list[dict[str, Any]], out_dir: Path, title: str = "training loss"
) -> tuple[Path, Path | None]:
    """Write loss_curve.json and loss_curve.png into ``out_dir``; PNG is None without matplotlib."""
    out_dir.mkdir(parents=True, exist_ok=True)
    points = loss_points(log_history)
    json_path = out_dir / "loss_curve.json"
    json_path.write_text(json.dumps(points, indent=1), encoding="utf-8")
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on servers and CI
        import matplotlib.pyplot as plt
    except ImportError:
        return json_path, None
    finite = [p for p in points if math.isfinite(p["loss"])]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    if finite:
        ax.plot(
            [p["step"] for p in finite],
            [p["loss"] for p in finite],
            marker="." if len(finite) < 40 else None,
            label="train",
        )
    else:
        ax.text(0.5, 0.5, "no finite loss logged", ha="center", va="center", transform=ax.transAxes)
    evals = [p for p in eval_points(log_history) if math.isfinite(p["eval_loss"])]
    if evals:
        ax.plot([p["step"] for p in evals], [p["eval_loss"] for p in evals], marker="o",
                label="eval")  # fmt: skip
        ax.legend()
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png_path = out_dir / "loss_curve.png"
    fig.savefig(png_path)
    plt.close(fig)
    return json_path, png_path
