"""The judges of a run as values, before they are opened: each one a ``BackendSpec`` (which
model, where, with which key variable, requests at once and timeout) under the key that
names it in results, ``backend:model`` (``openai:gpt-4o``, ``scripted:default``), the key run
folders have always recorded, so a folder judged before resumes with the same judge.

``open_judges`` opens them beside the model under test, as ``JudgeSpec``s the run takes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.judges import Judge
from matrix_align.evaluate.tasks import JudgeSpec
from matrix_align.folders.records import model_key
from matrix_align.llm.spec import BackendSpec, open_all


@dataclass(frozen=True)
class JudgeBackend:
    """One judge: the backend spec of its model, named by ``key``."""

    spec: BackendSpec

    @property
    def key(self) -> str:
        return model_key(self.spec.backend, self.spec.model)

    def beside(self, under_test: BackendSpec) -> BackendSpec:
        """The judge's spec as it is opened: with the model under test's retries, and its
        request timeout and per-minute budget unless the judge's spec sets its own (a judge on
        the same API shares the process's one budget, as --rpm/--tpm promise)."""
        own = self.spec.model_fields_set
        shared: dict[str, object] = {"retries": under_test.retries}
        if "timeout_s" not in own:
            shared["timeout_s"] = under_test.timeout_s
        if not own & {"rpm", "tpm"}:
            shared["limits"] = under_test.limits
        return self.spec.replace(**shared)


def judge_backends(specs: Iterable[BackendSpec]) -> list[JudgeBackend]:
    """The judges of ``specs``, checked: two judges under one key would write each other's
    verdicts, so that is an error before anything is built."""
    judges = [JudgeBackend(spec) for spec in specs]
    keys = [judge.key for judge in judges]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise MatrixAlignError(
            f"The same judge is named twice: {', '.join(twice)}.",
            hint="each judge needs its own backend:model",
        )
    return judges


@contextlib.asynccontextmanager
async def open_judges(
    judges: list[JudgeBackend], *, under_test: BackendSpec, max_tokens: int, seed: int
) -> AsyncIterator[list[JudgeSpec]]:
    """The judges, each opened in the running loop in turn (built, then checked), ``beside``
    the model under test; all closed when the block ends."""
    async with open_all(judge.beside(under_test) for judge in judges) as chats:
        yield [
            JudgeSpec(judge.key, Judge(chat, key=judge.key, max_tokens=max_tokens, seed=seed))
            for judge, chat in zip(judges, chats, strict=True)
        ]
