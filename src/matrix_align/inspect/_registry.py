"""The ``inspect_ai`` entry point: importing these modules registers the tasks, the solver,
the scorers and the model provider under the ``matrix_align/`` namespace."""

from matrix_align.inspect import provider, scorers, solver, tasks

__all__ = ["provider", "scorers", "solver", "tasks"]
