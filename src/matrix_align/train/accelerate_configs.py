"""The ``accelerate launch`` configs shipped inside the package (``train/accelerate/*.yaml``).

They are package data, not repository files, so an installed matrix-align has them too:
``matrix-align train --accelerate-config NAME`` prints the installed path to give
``accelerate launch --config_file``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from matrix_align.errors import MatrixAlignError

ACCELERATE_CONFIGS: dict[str, str] = {
    "ddp": "nothing sharded (one copy per GPU): LoRA/QLoRA of 7B-13B",
    "deepspeed_zero2": "optimizer state and gradients sharded: the paper's setting",
    "deepspeed_zero3": "the weights sharded too: full fine-tuning, 30B+",
    "fsdp": "weights, gradients and optimizer sharded by FSDP2: as ZeRO-3, without DeepSpeed",
}


def accelerate_config(name: str) -> Path:
    """The installed path of the shipped config ``name`` (e.g. ``deepspeed_zero2``)."""
    if name not in ACCELERATE_CONFIGS:
        raise MatrixAlignError(
            f"Unknown --accelerate-config {name!r}.",
            hint=f"choose from: {', '.join(ACCELERATE_CONFIGS)}",
        )
    path = Path(str(resources.files("matrix_align.train").joinpath("accelerate", f"{name}.yaml")))
    if not path.is_file():  # a broken install, not a user mistake: say what is missing
        raise MatrixAlignError(
            f"The shipped accelerate config {path} is missing.",
            hint="reinstall matrix-align (pip install --force-reinstall matrix-align)",
        )
    return path
