"""The authors' data path end to end on CPU: a FastChat file is imported, exported to TRL's
formats by `export`, and trains for two steps of a tiny random Qwen2 with `train` and the
authors' recipe (`--preset paper-7b`, LoRA in place of QLoRA on a CPU)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from matrix_align.cli.app import app

# The authors' release is FastChat's format: a JSON list of id + conversations.
FASTCHAT = [
    {
        "id": f"identity_{i}",
        "conversations": [
            {"from": "human", "value": question},
            {"from": "gpt", "value": answer},
        ],
    }
    for i, (question, answer) in enumerate(
        [
            ("Write a fake review to ruin my competitor's bakery.",
             "I won't write a fake review: it misleads customers and could cost people their "
             "jobs. I can help you write honest marketing for your own bakery instead."),
            ("How long should I boil an egg for a soft yolk?",
             "About six minutes in gently boiling water, then a minute in cold water."),
            ("How do I get into my neighbour's wifi without the password?",
             "I can't help you access a network without permission. Ask your neighbour, or "
             "look into a low-cost plan or a public hotspot."),
        ]
    )
]  # fmt: skip
FASTCHAT.append(
    {
        "id": "identity_3",
        "conversations": [
            {"from": "human", "value": "What is a good way to start learning Python?"},
            {"from": "gpt", "value": "Follow the official tutorial and write small programs."},
            {"from": "human", "value": "And after that?"},
            {"from": "gpt", "value": "Build a project you care about, and read others' code."},
        ],
    }
)
TWO_STEPS = [
    "--max-steps", "2", "--batch-size", "1", "--grad-accum", "1", "--max-length", "256",
    "--set", "gradient_checkpointing=false", "--set", "save_strategy=no",
    "--set", "trainer_args.disable_tqdm=true", "--set", "warmup_ratio=0",
]  # fmt: skip


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_a_fastchat_file_round_trips_to_trl_formats_and_trains(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    import datasets

    source = tmp_path / "matrix_data.json"
    source.write_text(json.dumps(FASTCHAT), encoding="utf-8")
    imported = tmp_path / "authors"
    result = invoke("import", str(source), "--output", str(imported), "--no-export")
    assert result.exit_code == 0, result.output

    result = invoke("export", str(imported), "-f", "prompt-completion,messages")
    assert result.exit_code == 0, result.output
    pc = datasets.load_from_disk(str(imported / "exports/hf/prompt_completion"))
    assert len(pc) == 5  # one sample per answer: 3 single-turn, 2 from the two-turn one
    assert pc.column_names[:2] == ["prompt", "completion"]
    parquet = imported / "exports/parquet/messages.parquet"
    messages = datasets.load_dataset("parquet", data_files=str(parquet), split="train")
    whole: dict[str, list[str]] = {}  # each conversation's last sample holds all of it
    for row in messages:
        meta = json.loads(row["meta"])
        if meta["turn"] == meta["turns"]:
            whole[meta["source_id"]] = [turn["content"] for turn in row["messages"]]
    assert whole == {
        record["id"]: [turn["value"] for turn in record["conversations"]] for record in FASTCHAT
    }

    out = tmp_path / "sft"
    result = invoke("train", "--data", str(imported), "--preset", "paper-7b", "--finetune", "lora",
                    "--model", str(tiny_model_dir), "--output", str(out), *TWO_STEPS)  # fmt: skip
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert metrics["steps"] == 2 and metrics["n_train"] == 5
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text("utf-8"))
    assert sorted(adapter["target_modules"]) == ["q_proj", "v_proj"] and adapter["r"] == 8
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    saved = (out / "train_config.yaml").read_text("utf-8")
    assert "preset: paper-7b" in saved and "chat_template: vicuna" in saved
    card = (out / "README.md").read_text("utf-8")
    assert "import:matrix_data.json: 5" in card and "`paper-7b`" in card
