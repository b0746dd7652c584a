"""Fine-tuning on MATRIX data (``matrix-align train``): SFT or DPO with TRL and PEFT.

Importing this package is cheap: torch, transformers, trl and peft are imported by the
functions that need them, so the CLI and the config can be used without the [train] extra.
"""

from matrix_align.train.config import Environment, TrainConfig
from matrix_align.train.data import TrainData, load_train_data

__all__ = ["Environment", "TrainConfig", "TrainData", "load_train_data", "run_training"]


def __getattr__(name: str):
    if name == "run_training":
        from matrix_align.train.run import run_training

        return run_training
    raise AttributeError(name)
