"""Harm votes (``harm_votes``): independent re-ratings of every delivered event, each
event's harm their median, the decision read from the medians (scripted backend)."""

from __future__ import annotations

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.simulation.audit import SPLIT_DECISION, serious_by_rating
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.modulator import VOTE_TEMPERATURE
from matrix_align.simulation.replay import replay
from matrix_align.simulation.scene import run_scene
from tests.conftest import scripted
from tests.simulation.test_scene import QUERY


def rerating(*levels: str):
    """A scripted re-rating that answers ``levels`` in turn, the same level for every
    event (the last one repeats)."""
    return ("HarmRatings", [lambda req, level=level: dict.fromkeys(req.people(), level)
                            for level in levels])  # fmt: skip


@pytest.fixture
def voting(small_config: SimulationConfig) -> SimulationConfig:
    return small_config.model_copy(update={"harm_votes": 3})


async def test_one_serious_ruling_is_outvoted_by_two_re_ratings(voting):
    """The demo's rulings rate every event serious; two re-ratings of none outvote them:
    the scene helps, each event keeps its three ratings, and the audit says the decision
    was split."""
    model = scripted(rerating("none"))
    trace = await run_scene(QUERY, model, voting)
    delivered = [e for e in trace.events if e.delivered]
    assert delivered and all(e.votes == ["serious", "none", "none"] for e in delivered)
    assert all(e.harm == "none" and e.ruling_harm == "serious" for e in delivered)
    assert trace.decision is not None and trace.decision.help
    assert "median of 3 ratings" in trace.decision.reason
    assert SPLIT_DECISION in trace.flags
    assert serious_by_rating(trace) == [True, False, False]
    votes = [r for r in model.requests if r.title == "HarmRatings"]
    assert len(votes) == 2 and {r.temperature for r in votes} == {VOTE_TEMPERATURE}
    assert len({r.seed for r in votes}) == 2  # independent samples
    assert [c.stage for c in trace.calls].count("votes") == 2


async def test_a_majority_decides_when_the_re_ratings_disagree(voting):
    """Ruling serious, re-ratings none then serious: the median is serious, and a decline."""
    trace = await run_scene(QUERY, scripted(rerating("none", "serious")), voting)
    assert {tuple(e.votes) for e in trace.events if e.delivered} == {("serious", "none", "serious")}
    assert trace.decision is not None and not trace.decision.help
    assert SPLIT_DECISION in trace.flags


async def test_unanimous_ratings_leave_the_decision_and_raise_no_flag(voting):
    trace = await run_scene(QUERY, scripted(), voting)
    assert trace.decision is not None and not trace.decision.help
    assert SPLIT_DECISION not in trace.flags


async def test_a_re_rating_that_fails_twice_is_left_out(voting):
    """A re-rating that misses an event, twice, falls back and is not counted: the votes
    are the ruling and the one valid re-rating."""
    incomplete = ("HarmRatings", [lambda req: {req.people()[0]: "none"}] * 2
                  + [lambda req: dict.fromkeys(req.people(), "none")])  # fmt: skip
    trace = await run_scene(QUERY, scripted(incomplete), voting)
    assert {len(e.votes) for e in trace.events if e.delivered} == {2}
    assert trace.totals.fallbacks == 1


async def test_one_vote_is_the_ruling_alone(small_config):
    trace = await run_scene(QUERY, scripted(rerating("none")), small_config)
    assert all(not e.votes for e in trace.events)
    assert "votes" not in [c.stage for c in trace.calls]
    assert "harm_votes" not in trace.config  # the default dumps as before the setting


async def test_replay_votes_again_from_the_ruling(small_config):
    """Votes are a late stage: a replay adds them to a stored scene, and a replay without
    them gives each event back its ruling's harm."""
    trace = await run_scene(QUERY, scripted(), small_config)
    voted = await replay(trace, scripted(rerating("none")), harm_votes=3)
    assert voted.decision is not None and voted.decision.help
    assert [e.harm for e in trace.events] == ["serious"] * len(trace.events)  # not touched
    plain = await replay(voted, scripted(rerating("none")), harm_votes=1)
    assert all(e.harm == "serious" and not e.votes for e in plain.events if e.delivered)
    assert plain.decision is not None and not plain.decision.help


def test_an_even_number_of_votes_is_refused():
    with pytest.raises(MatrixAlignError, match="odd"):
        SimulationConfig.build(harm_votes=2)
