"""Systems under test: named responders that turn one query into one answer on any backend.

``vanilla`` is the model as it is and ``matrix`` is the social scene simulation at inference
time; the others are the paper's inference-time baselines, each making exactly the calls its
method defines (see ``SYSTEMS`` for the call counts):

- ``critique-revise`` (Constitutional AI): answer, then per round a critique and a revision
  driven by one fixed, human-written principle (prompts/constitution.yaml).
- ``self-align`` (principle-driven prompting): one call with the principles as the system
  prompt; the model names the principles that apply, then answers.
- ``context-distillation``: one call under a helpful-honest-harmless system prompt. At
  inference time this is the context that training would distil away.
- ``debate``: several agents answer, read each other's answers and revise for some rounds,
  then one call writes the final answer.
- ``best-of-n``: n samples at a higher temperature; a selector (the judge when evaluating,
  else the model itself) picks one in a single listwise call.
- ``self-refine``: answer, then model-written feedback and a refinement, repeated until the
  feedback says no revision is needed.

Every call goes through ``SceneCalls``, the simulator's own recorder, so every system
returns the same provenance as a scene: a ``SceneTrace`` holding each call with its
messages, tokens and latency. That makes the cost table exact and lets ``generate`` store a
baseline's answers with the same record type as MATRIX samples.

This package sits below ``data`` and ``evaluate`` and imports neither: ``evaluate`` runs
the systems on benchmarks, and ``generate`` answers a source with any baseline by its name
(``--source NAME:<system>``), so its answers become a training set.
``respond(name, query, model, config)`` returns ``(answer, calls)``; ``respond_full`` also
returns the trace and the first answer (the ``rejected`` side of a preference pair).
"""

from __future__ import annotations

# The public names, from the modules that hold them (one per system, and context.py, options.py,
# registry.py and response.py), so that ``from matrix_align.systems import ...`` keeps working.
from matrix_align.systems.context import Context, System, reason_limit, strip_label
from matrix_align.systems.options import SystemOptions
from matrix_align.systems.registry import SYSTEMS, check_systems, system_settings
from matrix_align.systems.response import SystemResponse, respond, respond_full
from matrix_align.systems.self_align import split_thought

__all__ = [
    "SYSTEMS",
    "Context",
    "System",
    "SystemOptions",
    "SystemResponse",
    "check_systems",
    "reason_limit",
    "respond",
    "respond_full",
    "split_thought",
    "strip_label",
    "system_settings",
]
