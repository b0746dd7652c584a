"""``matrix-align sweep``: one evaluation per cell of a grid of simulation settings, in one
evaluate folder (docs/sweep.md). Above ``evaluate``: each cell is an evaluate run.

- ``grid``: the ``--grid`` cells as simulation configurations;
- ``run``: one ``evaluate`` run per cell, resumed cell by cell;
- ``state``: ``sweep.json``, each cell's fingerprint and whether it finished;
- ``report``: the sweep's table and figure.
"""
