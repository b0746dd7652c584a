"""What both kinds of run folder share: the fields of a failed item in errors.jsonl, and the
audit of a MATRIX answer with its query's harmful label."""

from __future__ import annotations

from matrix_align.folders.records import ErrorRecord, SourceRecord, audit_answer, failure_fields
from matrix_align.simulation.audit import COMPLIES_WITH_HARMFUL
from matrix_align.simulation.trace import SceneTrace


def test_failure_fields_make_an_error_record_with_the_query_cut_to_2000_characters() -> None:
    fields = failure_fields(id="a1", source="advbench", mode="answer:matrix", source_id="7",
                            query="q" * 2500)  # fmt: skip
    record = ErrorRecord(**fields, reason="timeout")
    assert (record.id, record.source, record.mode, record.source_id) == (
        "a1", "advbench", "answer:matrix", "7"
    )  # fmt: skip
    assert record.query == "q" * 2000


def test_audit_answer_reads_the_query_s_label_and_stores_the_flags_on_the_trace() -> None:
    trace = SceneTrace(query="q", initial_response="Sure, here it is.", final_response="Sure.")
    labelled = SourceRecord(id="s/1", source="s", prompt="q", metadata={"harmful": True})
    assert audit_answer(trace, labelled) == trace.flags
    assert COMPLIES_WITH_HARMFUL in trace.flags
    unlabelled = SourceRecord(id="s/2", source="s", prompt="q", metadata={"harmful": "yes"})
    assert unlabelled.harmful is None
    assert COMPLIES_WITH_HARMFUL not in audit_answer(trace, unlabelled)
