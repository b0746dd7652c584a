"""What both kinds of run folder share: the fields of a failed item in errors.jsonl."""

from __future__ import annotations

from matrix_align.folders.records import ErrorRecord, failure_fields


def test_failure_fields_make_an_error_record_with_the_query_cut_to_2000_characters() -> None:
    fields = failure_fields(id="a1", source="advbench", mode="answer:matrix", source_id="7",
                            query="q" * 2500)  # fmt: skip
    record = ErrorRecord(**fields, reason="timeout")
    assert (record.id, record.source, record.mode, record.source_id) == (
        "a1", "advbench", "answer:matrix", "7"
    )  # fmt: skip
    assert record.query == "q" * 2000
