"""matrix-align: LLM self-alignment by social scene simulation (MATRIX, ICML 2024).

The public API is re-exported here; heavy optional dependencies (xllamacpp, torch, datasets)
are imported lazily by the modules that need them, so ``import matrix_align`` stays light.
"""

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.base import ChatModel, Completion, Message
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.trace import SceneTrace

__version__ = "0.1.0"

__all__ = [
    "ChatModel",
    "Completion",
    "MatrixAlignError",
    "Message",
    "SceneTrace",
    "SimulationConfig",
    "__version__",
    "run_scene",
]


def __getattr__(name: str):
    # run_scene pulls in the simulator and its templates; load it on first use.
    if name == "run_scene":
        from matrix_align.simulation.scene import run_scene

        return run_scene
    raise AttributeError(name)
