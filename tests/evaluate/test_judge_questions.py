"""The metrics' questions to a model judge: both-order pairwise judging, unscored replies,
the 1-10 rubrics, and the StrongREJECT and MT-Bench scoring."""

from __future__ import annotations

import pytest

from matrix_align.evaluate.judge_questions import (
    combine_orders,
    mt_bench,
    pairwise,
    parse_rating,
    rubric,
    strongreject,
    strongreject_score,
)
from matrix_align.evaluate.judges import Judge

from .conftest import judge_model, prefers


def test_combine_orders() -> None:
    assert combine_orders("win", "win") == "win"
    assert combine_orders("lose", "lose") == "lose"
    assert combine_orders("tie", "tie") == "tie"
    assert combine_orders("win", "lose") == "tie"  # flips with the order: no real preference
    assert combine_orders("win", "tie") == "tie"
    assert combine_orders(None, "win") is None
    assert combine_orders("win", None) is None


async def test_pairwise_judges_both_orders_and_keeps_a_consistent_preference() -> None:
    judge = Judge(judge_model(PairwiseReply=prefers("SAFE")))
    judged = await pairwise(judge, "q", "SAFE answer", "harmful answer", "harmlessness")
    assert judged.verdict.scored and judged.verdict.label == "win"
    assert judged.verdict.detail["orders"] == ["win", "win"]
    # The two calls show the answers in swapped positions.
    first, second = (c.messages[-1]["content"] for c in judged.calls)
    assert first.index("SAFE answer") < first.index("harmful answer")
    assert second.index("harmful answer") < second.index("SAFE answer")
    assert [c.round for c in judged.calls] == [1, 2]

    losing = await pairwise(judge, "q", "harmful answer", "SAFE answer", "harmlessness")
    assert losing.verdict.label == "lose"


async def test_a_position_biased_judge_gives_a_tie() -> None:
    always_a = Judge(judge_model(PairwiseReply={"reason": "first is best", "verdict": "A"}))
    judged = await pairwise(always_a, "q", "one", "two", "helpfulness")
    assert judged.verdict.detail["orders"] == ["win", "lose"]
    assert judged.verdict.scored and judged.verdict.label == "tie"


async def test_unparseable_pairwise_reply_is_unscored_never_a_result() -> None:
    judge = Judge(
        judge_model(PairwiseReply=[{"reason": "x", "verdict": "A"}, "garbage", "more garbage"])
    )
    judged = await pairwise(judge, "q", "one", "two", "harmlessness")
    assert not judged.verdict.scored and judged.verdict.label is None
    assert judged.verdict.detail["orders"][1] is None
    assert len(judged.calls) == 3  # order 1, order 2 and its one re-ask


async def test_rubric_scores_and_labels_harmlessness() -> None:
    judge = Judge(
        judge_model(RubricReply=[{"reason": "fine", "score": 9}, {"reason": "bad", "score": 3}])
    )
    good = await rubric(judge, "q", "a", "harmlessness")
    bad = await rubric(judge, "q", "a", "harmlessness")
    assert (good.verdict.label, good.verdict.score) == ("harmless", 9.0)
    assert (bad.verdict.label, bad.verdict.score) == ("harmful", 3.0)
    helpful = await rubric(Judge(judge_model()), "q", "a", "helpfulness")
    assert helpful.verdict.score == 8.0 and helpful.verdict.label is None


async def test_out_of_range_rubric_score_is_unscored() -> None:
    judge = Judge(judge_model(RubricReply={"reason": "x", "score": 11}))
    judged = await rubric(judge, "q", "a", "helpfulness")
    assert not judged.verdict.scored and judged.verdict.score is None
    assert [c.valid for c in judged.calls] == [False, False]


def test_strongreject_score() -> None:
    assert strongreject_score(True, 5, 5) == 0.0
    assert strongreject_score(False, 1, 1) == 0.0
    assert strongreject_score(False, 5, 5) == 1.0
    assert strongreject_score(False, 3, 4) == pytest.approx(5 / 8)


async def test_strongreject_judgement() -> None:
    judge = Judge(
        judge_model(
            StrongRejectReply={"reasoning": "r", "refused": False, "convincing": 4, "specific": 2}
        )
    )
    judged = await strongreject(judge, "q", "a")
    assert judged.verdict.label == "compliance" and judged.verdict.score == pytest.approx(0.5)
    assert judged.verdict.detail["convincing"] == 4


def test_parse_rating() -> None:
    assert parse_rating("Good. Rating: [[7]]") == 7.0
    assert parse_rating("Rating: [[8.5]]") == 8.5
    assert parse_rating("Rating: [6]") == 6.0
    assert parse_rating("Rating: 7") is None
    assert parse_rating("[[11]]") is None


async def test_mt_bench_grading_uses_mt_bench_prompts() -> None:
    model = judge_model(**{"*": ["Fine. Rating: [[8]]", "Weak. Rating: [[3]]", "no rating here"]})
    judge = Judge(model)
    one = await mt_bench(judge, ["Write a poem."], ["Roses..."], category="writing")
    assert one.verdict.score == 8.0 and one.verdict.detail["prompt"] == "single-v1"
    assert "[The Start of Assistant's Answer]\nRoses..." in one.calls[0].messages[-1]["content"]
    two = await mt_bench(
        judge, ["What is 2+2?", "And 3+3?"], ["4", "6"], category="math", references=["4", "6"]
    )
    assert two.verdict.score == 3.0
    assert two.verdict.detail["prompt"] == "single-math-v1-multi-turn"
    assert "### Reference answer:\n6" in two.calls[0].messages[-1]["content"]
    bad = await mt_bench(judge, ["q"], ["a"])
    assert not bad.verdict.scored and "unscored" in bad.verdict.detail
