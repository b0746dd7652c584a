"""MATRIX inside inspect_ai: a ``matrix()`` solver, the paper's benchmarks as tasks, scorers,
and a model provider for matrix-align's own backends (``pip install 'matrix-align[inspect]'``).

inspect_ai finds everything through the ``inspect_ai`` entry point (``matrix_align``), so
``inspect eval matrix_align/advbench --solver matrix_align/matrix`` works once the package is
installed; nothing here is imported by ``import matrix_align``. The modules:

- ``chat_model``: the project's ``ChatModel`` on top of an inspect ``Model``, so a scene runs
  through any inspect provider (its retries, rate limits, logging and usage accounting);
- ``solver``: ``matrix()``, one scene per sample, the final answer as the completion;
- ``scene_view``: what of the scene goes into the transcript, the metadata and the store;
- ``dataset`` and ``tasks``: the benchmarks, from ``data.sources``' loaders;
- ``scorers``: the refusal-phrase detector and the model-graded judges (role ``grader``);
- ``provider``: ``--model matrix_align/embedded`` and ``matrix_align/scripted``, the
  project's backends as an inspect model provider;
- ``_registry``: the entry point module.
"""

from matrix_align.extras import INSPECT_HINT, INSPECT_MODULES, require_modules

# Checked here, before any submodule imports inspect_ai, so a missing extra is one clear
# error instead of an ImportError from deep inside a module.
require_modules(INSPECT_MODULES, "The inspect_ai integration", INSPECT_HINT)
