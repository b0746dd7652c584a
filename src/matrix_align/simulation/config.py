"""Simulation parameters: one place defines each default (values from the paper, docs/method.md).

Loadable from YAML (``SimulationConfig.from_yaml``) and overridable field by field from the
command line. The dump of this model is part of every dataset record's id, so two runs with
different settings never share records.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

from matrix_align.errors import MatrixAlignError, build_checked
from matrix_align.flags import NOT_A_FLAG, Flag, flag_of
from matrix_align.run_file import read_sections
from matrix_align.simulation.prompts import read_overrides, render, templates_sha256


class SimulationConfig(BaseModel):
    """The settings of a scene. Each field's description is its help on the command line
    (``cli.options.SimulationOptions`` derives the options from these fields; ``Flag`` names
    an option that is not ``--field-name``); the ``NOT_A_FLAG`` ones are set by a file
    (``--config``, the paper profile) or ``--set``, keeping the command line to the settings
    most runs change."""

    model_config = ConfigDict(extra="forbid")

    n_roles: Annotated[int, Flag("--roles")] = Field(
        5, ge=1, le=16, description="Stakeholders besides the user."
    )
    n_steps: Annotated[int, Flag("--steps")] = Field(
        5, ge=1, le=32, description="Actions in the user's plan, i.e. rounds."
    )
    reaction_depth: Annotated[int, Flag("--depth")] = Field(
        1,
        ge=0,
        le=3,
        description="Reaction depth: 0 none, 1 reactions to the user, 2 also to reactions.",
    )
    reactions: Literal["joint", "separate"] = Field(
        "joint",
        description="joint: everyone who noticed an action reacts in one call, ruled on in one "
        "call; separate: a call per reaction and per ruling, as in the paper.",
    )
    memory_budget: int = Field(
        12,
        ge=2,
        le=200,
        description="Events kept verbatim before the modulator summarises them.",
    )
    private_memory: Annotated[bool, Flag("--private-memory/--shared-memory")] = Field(
        False,
        description="Each role's calls show only the events it witnessed (its own actions and "
        "what was routed to it), as the authors' agents knew (private), or the whole scene "
        "memory, which a prefix cache reuses best (shared).",
    )
    adaptive_plan: Annotated[bool, Flag("--adaptive-plan/--fixed-plan")] = Field(
        True, description="Let the user adapt each planned step to what it observed."
    )
    strictness: Literal["lenient", "normal", "strict"] = Field(
        "normal",
        description="Modulator strictness, how readily it rejects an action as infeasible: "
        "lenient, normal, strict.",
    )
    max_replacements: Annotated[int, NOT_A_FLAG] = Field(
        1, ge=0, le=3, description="Replacement actions an actor may propose after a rejection."
    )
    seed: int = Field(0, description="Base seed; each call derives its own from it.")
    temperature: float = Field(0.2, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(1024, ge=16, description="Cap on new tokens per call.")
    # From 1: the final answer is plain text, so any cap works, and `serve` passes an OpenAI
    # client's max_tokens here (harnesses ask for a few tokens, 1 for a label).
    final_max_tokens: int = Field(2048, ge=1, description="Cap on new tokens of the final answer.")
    final_prompt: Literal["system", "authors", "verdict", "paper"] = Field(
        "verdict",
        description="How the final answer is written: verdict (decide help or decline from the "
        "scene's harm ratings, then answer), system (the consequence in the system prompt), "
        "authors (all context in one user turn, asking for an updated response), paper (the "
        "authors' structure with a worked refusal example, written in our words).",
    )
    plan_from: Annotated[Literal["request", "first_answer"], NOT_A_FLAG] = Field(
        "request",
        description="What the asker's plan carries out: request (what they asked for, from "
        "this answer or elsewhere) or first_answer (they follow the model's first answer, "
        "as in the paper).",
    )
    intent_event: Annotated[bool, NOT_A_FLAG] = Field(
        True,
        description="Round 0 records the asker setting out to do exactly what they asked, "
        "rated for harm; false: the scene starts from the plan, as in the paper.",
    )
    consequence: Annotated[Literal["harms", "critiques"], NOT_A_FLAG] = Field(
        "harms",
        description="What the consequence is made of: harms (what each harmful event did and "
        "to whom) or critiques (the modulator's free-text critique of every delivered action "
        "against widely shared values, as in the paper).",
    )
    prompts: Annotated[dict[str, str], Flag("--prompts", takes=Path)] = Field(
        default_factory=dict,
        description="Folder of NAME.j2 templates replacing the scene's built-in ones by name "
        "(docs/simulation.md lists them and their variables); checked before any call, and "
        "recorded (name -> template text) in the trace, provenance and sample ids.",
    )
    keep_refusals: Annotated[bool, NOT_A_FLAG] = Field(
        True,
        description="Verdict design: a first answer that declined stays declined whatever the "
        "scene shows; false lets a scene that recorded no harm overturn it.",
    )
    check_alternative: Annotated[bool, NOT_A_FLAG] = Field(
        True,
        description="Verdict design: a written decline that suggests something else to do "
        "anyway (it is asked for no alternative) has that rated for harm, and a suggestion "
        "that does serious harm is cut from it.",
    )
    harm_votes: int = Field(
        1,
        ge=1,
        le=9,
        description="Ratings of each delivered event's harm the decision reads: 1, the "
        "modulator's ruling alone; an odd N > 1 adds N-1 independent re-ratings of every event "
        "(one call each) and takes each event's median rating.",
    )
    text_limit: Annotated[int, NOT_A_FLAG] = Field(
        300, ge=40, le=4000, description="Max characters of a situation, action or critique."
    )

    @field_validator("harm_votes")
    @classmethod
    def _odd_votes(cls, value: int) -> int:
        # An odd count has a median that is one of the ratings: no tie to break.
        if value % 2 == 0:
            raise ValueError("harm_votes must be odd (1, 3, 5, ...), so the median is a rating")
        return value

    @field_validator("prompts", mode="before")
    @classmethod
    def _read_prompts(cls, value: object) -> object:
        """A folder (``--prompts DIR``, ``prompts: DIR``) is read into name -> text; a
        mapping (a stored trace's config) is checked the same way."""
        return read_overrides(value)

    @model_serializer(mode="wrap")
    def _dump(self, handler):  # noqa: ANN001, ANN202 - pydantic's serializer protocol
        """The settings, without those of ``LATER_SETTINGS`` left at their default, so a
        configuration that does not use them dumps, and so hashes into sample ids and
        compares against a folder's run.json, exactly as before they existed."""
        data = handler(self)
        for name in LATER_SETTINGS:
            if getattr(self, name) == type(self).model_fields[name].get_default(
                call_default_factory=True
            ):
                data.pop(name, None)
        return data

    def custom_templates(self) -> bool:
        """Whether a scene renders templates other than the default ones: an override, or
        a variant selected by a switch (the paper profile's, the harm votes')."""
        return bool(self.prompts) or (
            self.plan_from != "request"
            or self.consequence != "harms"
            or self.final_prompt == "paper"
            or self.harm_votes > 1
        )

    def templates_sha256(self) -> str:
        """The hash of every template with this configuration's overrides in place."""
        return templates_sha256(self.prompts, variants=True)

    def render(self, name: str, **values: object) -> str:
        """Template ``name`` as these settings render it (with its override, if any)."""
        return render(name, self.prompts, **values)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: object) -> SimulationConfig:
        """Read a YAML mapping of settings, or a built-in profile by name (``PROFILES``, when
        no such file exists); ``overrides`` (non-None) win over it."""
        return cls.load(path, overrides=overrides)

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        sets: Mapping[str, object] | None = None,
        overrides: Mapping[str, object] | None = None,
    ) -> SimulationConfig:
        """The settings of a command, lowest first: the defaults, the YAML file or profile
        ``path`` (a run's file: its ``simulation:`` section, or its top-level settings when
        it has no sections; ``run_file``), ``sets`` (``--set KEY=VALUE``), then
        ``overrides`` (the options given; None = not given). Keys of the file and of
        ``sets`` are the options' names (``roles``, ``memory-budget``) or the field names
        (``n_roles``, ``memory_budget``)."""
        data: dict[str, object] = {}
        if path is not None:
            section = read_sections(path, PROFILES).get("simulation") or {}
            data.update(settings(section, f"in {path}", cls))
        data.update(settings(sets or {}, "given to --set", cls))
        data.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.build(**data)

    @classmethod
    def build(cls, **values: object) -> SimulationConfig:
        """Construct from user values, turning validation errors into one clear message."""
        return build_checked(
            cls,
            values,
            "simulation settings",
            hint="see `matrix-align simulate --help` for the allowed ranges",
        )


# Settings added after datasets had been generated (issues 24 and 28). At their default they are
# left out of the dump: sample ids hash the dump and a folder's run.json compares it, so a
# default run resumes and keeps its ids.
LATER_SETTINGS = ("plan_from", "intent_event", "consequence", "prompts", "harm_votes")

# Named settings ``--config NAME`` accepts. ``paper``: the authors' simulator as published,
# each of its differences from our default one switch (docs/method.md, "Where we differ",
# lists them with the reasons, and a test holds that table and this profile together).
PROFILES: dict[str, dict[str, object]] = {
    "paper": {
        "plan_from": "first_answer",  # the user follows the first answer
        "intent_event": False,  # the scene starts from the plan
        "consequence": "critiques",  # free-text critiques feed the consequence
        "final_prompt": "paper",  # one user turn with a worked refusal example
        "private_memory": True,  # each role knows only what reached it
        "adaptive_plan": False,  # the plan is fixed at set-up
        "reactions": "separate",  # one call per reaction and per ruling
        "strictness": "strict",  # feasibility as plausibility and common sense
        "n_roles": 5,  # the paper's sizes
        "n_steps": 5,
        "memory_budget": 3,  # the authors folded memory past 3 items
    },
}


def option_aliases(model: type[SimulationConfig] | None = None) -> dict[str, str]:
    """The options' names (``roles``) that are not their field's name with dashes
    (``n_roles``), read from the fields' ``Flag``s, by name; every other setting is named
    after its field (``memory-budget``). ``model``: SimulationConfig or a subclass."""
    fields = (model or SimulationConfig).model_fields
    return {
        flag_of(info.metadata).name(field): field
        for field, info in fields.items()
        if flag_of(info.metadata).name(field) != field.replace("_", "-")
    }


OPTION_ALIASES = option_aliases()


def setting_names(model: type[SimulationConfig] | None = None) -> list[str]:
    """Every name a setting may be given by, as a user types them: the options' names, then
    the settings that have no option (by field name)."""
    model = model or SimulationConfig
    dashed = (f.replace("_", "-") for f in model.model_fields)
    return sorted({*option_aliases(model), *dashed})


def setting_field(key: str, what: str = "simulation setting", where: str = "",
                  model: type[SimulationConfig] | None = None) -> str:  # fmt: skip
    """The ``SimulationConfig`` field a key names (``roles``, ``n_roles``, ``memory-budget``,
    ``memory_budget``), or one error naming the key and every allowed name."""
    model = model or SimulationConfig
    name = key.strip().lower()
    field = option_aliases(model).get(name.replace("_", "-"), name.replace("-", "_"))
    if field not in model.model_fields:
        raise MatrixAlignError(
            f"Unknown {what} {key!r}{' ' + where if where else ''}.",
            hint=f"a simulation setting, e.g. roles, steps, depth; all: "
            f"{', '.join(setting_names(model))}",
        )
    return field


def settings(values: Mapping[str, object], where: str = "",
             model: type[SimulationConfig] | None = None) -> dict[str, object]:  # fmt: skip
    """A mapping keyed by any name of a setting, keyed by field names."""
    return {
        setting_field(str(key), where=where, model=model): value for key, value in values.items()
    }
