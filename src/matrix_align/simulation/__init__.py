"""The MATRIX simulator: scene set-up, rounds moderated by the social modulator, answer."""

from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.trace import SceneTrace

__all__ = ["SceneTrace", "SimulationConfig", "run_scene"]


def __getattr__(name: str):
    if name == "run_scene":
        from matrix_align.simulation.scene import run_scene

        return run_scene
    raise AttributeError(name)
