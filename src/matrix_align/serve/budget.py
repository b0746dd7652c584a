"""What one request's scene may use: model calls, and the characters its trace keeps.

A request chooses its own scene (``extra_body={"matrix": {...}}``) and a scene at every
setting's upper limit, with the longest query, makes hundreds of calls whose prompts each
repeat the query: a 29 MB trace held in memory while it runs and after. The server's
``--max-scene-calls`` and ``--max-scene-mb`` bound that. Counted as the calls are made (how
many a scene makes depends on what the model answers, so it cannot be known beforehand),
on every call of the request, the gate's included; the call that would go over is not made,
and the request is answered 400 ``scene_too_large``, naming what to change. The record
keeps what the scene recorded until then, which stays within the budget.
"""

from __future__ import annotations

from matrix_align.llm.base import ChatModel, Completion
from matrix_align.llm.wrappers import ModelWrapper, Request
from matrix_align.serve.api_errors import APIError

HINT = (
    "ask for a smaller scene (extra_body matrix: fewer roles or steps, a lower depth, "
    "reactions 'joint'), or a shorter message"
)


class SceneBudget(ModelWrapper):
    def __init__(self, model: ChatModel, *, max_calls: int, max_chars: int) -> None:
        super().__init__(model)
        self.max_calls = max_calls
        self.max_chars = max_chars
        self.calls = 0
        self.chars = 0  # of the prompts sent and the replies received

    async def _complete(self, request: Request) -> Completion:
        prompt = sum(len(m["content"]) for m in request.messages)
        if self.calls >= self.max_calls:
            raise _too_large(
                f"The scene needs more than the {self.max_calls} model calls a request may "
                "make on this server (--max-scene-calls)"
            )
        if self.chars + prompt > self.max_chars:
            raise _too_large(
                f"The scene's trace would exceed the {self.max_chars / 2**20:g} MB a request "
                "may keep on this server (--max-scene-mb)"
            )
        self.calls += 1
        completion = await request.send(self.inner)
        self.chars += prompt + len(completion.text)
        return completion


def _too_large(message: str) -> APIError:
    return APIError(400, f"{message}; {HINT}.", param="matrix", code="scene_too_large")
