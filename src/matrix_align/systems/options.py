"""The knobs of the baselines (rounds, agents, samples...), one model for every system: a
system names the fields it reads (``System.option_fields``), and only those enter its
answers' ids. Each knob is one field, with its default, bounds and help; ``evaluate``'s
options, a ``--config`` file's ``systems:`` section and ``--set systems.KEY=VALUE`` are
derived from them (``cli.evaluate_options.EvalSystems``, ``cli.run_config``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from matrix_align.errors import build_checked


class SystemOptions(BaseModel):
    """Knobs of the baselines. Only the fields a system uses enter its answers' ids."""

    model_config = ConfigDict(extra="forbid")

    critique_rounds: int = Field(1, ge=1, le=8, description="Critique-revise rounds.")
    debate_agents: int = Field(2, ge=2, le=8, description="Agents in a debate.")
    debate_rounds: int = Field(1, ge=1, le=8, description="Debate rounds of mutual critique.")
    best_of_n: int = Field(4, ge=2, le=32, description="Samples drawn by best-of-n.")
    sample_temperature: float = Field(
        0.8, ge=0.0, le=2.0, description="Temperature of best-of-n samples, their diversity."
    )
    refine_iterations: int = Field(2, ge=1, le=8, description="Most self-refine feedback rounds.")

    @classmethod
    def build(cls, **values: object) -> SystemOptions:
        """Construct from user values, turning validation errors into one clear message."""
        return build_checked(cls, values, "system options")
