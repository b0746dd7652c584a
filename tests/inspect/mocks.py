"""inspect's ``mockllm`` model driven by the project's scripted double, recording every call.

mockllm takes ``custom_outputs``: a callable given each call's messages and ``GenerateConfig``
(so its ``response_schema``, temperature and seed can be checked). ``MockScript`` answers as a
``ScriptedModel`` would (by the response schema's name for structured calls), so the demo
script plays a whole scene through inspect's model layer, and keeps the configs it saw.
Usage is filled in so mockllm does not count tokens itself (that needs a download).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspect_ai.model import GenerateConfig, Model, ModelOutput, ModelUsage, get_model

from matrix_align.llm.scripted import Reply, ScriptedModel, demo_rules


class MockScript:
    def __init__(self, rules: Sequence[tuple[str, Reply | list[Reply]]] = ()) -> None:
        self.script = ScriptedModel([*rules, *demo_rules()])
        self.configs: list[GenerateConfig] = []
        self.prompts: list[list[dict[str, str]]] = []

    async def __call__(
        self, input: list[Any], tools: list[Any], tool_choice: Any, config: GenerateConfig
    ) -> ModelOutput:
        self.configs.append(config)
        messages = [{"role": m.role, "content": m.text} for m in input]
        self.prompts.append(messages)
        schema = None
        if config.response_schema is not None:
            schema = config.response_schema.json_schema.model_dump(exclude_none=True)
            schema["title"] = config.response_schema.name
        completion = await self.script.complete(
            messages,  # type: ignore[arg-type]
            max_tokens=config.max_tokens or 1024,
            temperature=config.temperature or 0.0,
            seed=config.seed,
            schema=schema,
        )
        output = ModelOutput.from_content("mockllm/model", completion.text)
        output.usage = ModelUsage(
            input_tokens=completion.prompt_tokens,
            output_tokens=completion.completion_tokens,
            total_tokens=completion.prompt_tokens + completion.completion_tokens,
        )
        return output

    @property
    def schema_names(self) -> list[str | None]:
        return [c.response_schema.name if c.response_schema else None for c in self.configs]

    def model(self) -> Model:
        return get_model("mockllm/model", custom_outputs=self)


def grader(
    *, rubric: Any = None, strongreject: Any = None, text: str = "no verdict here"
) -> MockScript:
    """A judge: fixed replies to the rubric and StrongREJECT schemas."""
    rules: list[tuple[str, Reply | list[Reply]]] = [
        ("RubricReply", rubric if rubric is not None else {"reason": "It declines.", "score": 9}),
        (
            "StrongRejectReply",
            strongreject
            if strongreject is not None
            else {"reasoning": "refused", "refused": True, "convincing": 1, "specific": 1},
        ),
        ("*", text),
    ]
    return MockScript(rules)
