"""``matrix()``: MATRIX at inference time as an inspect solver.

For each sample the model under evaluation plays one social scene around the sample's
query (set-up, roles, rounds ruled on by the modulator, consequence) and writes a
consequence-aware answer, which becomes the sample's completion. Every call of the scene goes
through inspect's model layer (``chat_model.InspectChatModel``), so any ``--model`` works and
each call shows in the transcript; the scene's stages, key fields and full trace are kept
beside them (``scene_view``).

The modulator is the same model by default (the paper's monopolylogue); bind the model role
``modulator`` (``--model-role modulator=PROVIDER/MODEL``) to let another model rule on the
actions.
"""

from __future__ import annotations

from typing import Literal

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ModelOutput, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.tasks import epoch_config
from matrix_align.folders.records import ChatMessage as RecordMessage
from matrix_align.folders.records import render_conversation
from matrix_align.inspect.chat_model import InspectChatModel
from matrix_align.inspect.scene_view import (
    METADATA_KEY,
    TRACE_KEY,
    TranscriptObserver,
    scene_summary,
)
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.scene import run_scene
from matrix_align.simulation.trace import SceneTrace


@solver
def matrix(
    roles: int | None = None,
    steps: int | None = None,
    depth: int | None = None,
    reactions: Literal["joint", "separate"] | None = None,
    private_memory: bool | None = None,
    memory_budget: int | None = None,
    adaptive_plan: bool | None = None,
    strictness: Literal["lenient", "normal", "strict"] | None = None,
    seed: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    final_max_tokens: int | None = None,
    final_prompt: Literal["verdict", "system", "authors", "paper"] | None = None,
    config: str | None = None,
    structured: bool = True,
    keep_calls: bool = True,
) -> Solver:
    """MATRIX social scene simulation, then a consequence-aware answer.

    Args:
      roles: stakeholders besides the asker (default 5, as ``simulate --roles``).
      steps: actions in the asker's plan, one round each (default 5).
      depth: 0 nobody reacts; 1 roles react to the asker; 2 also to reactions.
      reactions: ``joint`` (everyone who noticed an action reacts in one call, ruled on in
        one call; the default) or ``separate`` (a call per reaction and per ruling).
      private_memory: each role's calls show only the events it witnessed.
      memory_budget: events kept verbatim before the modulator summarises them.
      adaptive_plan: the asker adapts each step to what it noticed.
      strictness: how readily the modulator rejects an action.
      seed: the scene seed; each call derives its own (with ``--epochs``, each epoch its own).
      temperature: sampling temperature of every scene call.
      max_tokens: cap on new tokens per scene call.
      final_max_tokens: cap on new tokens of the final answer.
      final_prompt: how the final answer is written (``verdict``, ``system``, ``authors``,
        ``paper``).
      config: a YAML file of ``SimulationConfig`` fields; the arguments above win over it.
      structured: send each decision's JSON schema as a response schema; false for
        providers that reject one (replies are validated and re-asked either way).
      keep_calls: keep every call's messages in the stored trace (the transcript has them
        too; false makes the log smaller).
    """
    values = {
        "n_roles": roles,
        "n_steps": steps,
        "reaction_depth": depth,
        "reactions": reactions,
        "private_memory": private_memory,
        "memory_budget": memory_budget,
        "adaptive_plan": adaptive_plan,
        "strictness": strictness,
        "seed": seed,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "final_max_tokens": final_max_tokens,
        "final_prompt": final_prompt,
    }
    # Checked now, when the task is built, so a bad setting stops the eval before any call.
    scene_config = (
        SimulationConfig.from_yaml(config, **values) if config else SimulationConfig.build(**values)
    )

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        actor = InspectChatModel(get_model(), structured=structured)
        # Without a bound "modulator" role this is the model under evaluation again.
        modulator = InspectChatModel(get_model(role="modulator"), structured=structured)
        trace = await run_scene(
            scene_query(state),
            actor,
            epoch_config(scene_config, state.epoch - 1),
            modulator=modulator,
            on_event=TranscriptObserver(),
        )
        record(state, trace, keep_calls=keep_calls)
        return state

    return solve


def scene_query(state: TaskState) -> str:
    """The one query a scene simulates, from the conversation so far."""
    query = query_of(state.messages)
    if query is None:
        raise MatrixAlignError(
            f"Sample {state.sample_id}: the matrix solver needs a user message to answer.",
            hint="put matrix() first in the solver chain, on samples whose input ends with a "
            "user message",
        )
    return query


def query_of(messages: str | list[ChatMessage]) -> str | None:
    """The user's message, or, for a conversation, the turns rendered as the project renders
    multi-turn sources; None when the last turn is not the user's. System messages are left
    out: they are the eval's instructions to the model, not part of what the asker said."""
    if isinstance(messages, str):
        return messages
    turns = [
        RecordMessage(role=m.role, content=m.text)
        for m in messages
        if m.role in ("user", "assistant") and m.text.strip()
    ]
    if not turns or turns[-1].role != "user":
        return None
    return render_conversation(turns)


def record(state: TaskState, trace: SceneTrace, *, keep_calls: bool) -> None:
    """The final answer as the completion; the scene in the metadata and the store."""
    model = str(state.model)
    state.output = ModelOutput.from_content(model=model, content=trace.final_response)
    state.messages.append(ChatMessageAssistant(content=trace.final_response, model=model))
    state.metadata[METADATA_KEY] = scene_summary(trace)
    stored = trace.model_dump(mode="json", exclude=None if keep_calls else {"calls"})
    state.store.set(TRACE_KEY, stored)
