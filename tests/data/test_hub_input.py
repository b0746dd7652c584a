"""Hub datasets as inputs: `generate --input hf://OWNER/NAME` and `train --data OWNER/NAME`
read through `datasets.load_dataset`, and are refused with one clear error when they cannot
be loaded (HF_HUB_OFFLINE=1 and not in the cache)."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from matrix_align.data.hub_input import HubDataset, parse_hub_spec
from matrix_align.data.sources import load_input_file
from matrix_align.errors import MatrixAlignError


@pytest.fixture
def offline(monkeypatch, tmp_path: Path) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache
    # The libraries read the variable once, at import: an earlier test has imported them, so
    # their flags are set too, or they would try the network and back off for minutes.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


@pytest.fixture
def fake_hub(monkeypatch) -> dict[str, datasets.Dataset]:
    """Two configs of `me/data`, as an export pushed with its card would have."""
    configs = {
        "prompt_completion": datasets.Dataset.from_list(
            [{"prompt": [{"role": "user", "content": "q"}],
              "completion": [{"role": "assistant", "content": "a"}], "source": "s"}]
        ),
        "preference": datasets.Dataset.from_list(
            [{"prompt": [{"role": "user", "content": "q"}],
              "chosen": [{"role": "assistant", "content": "careful"}],
              "rejected": [{"role": "assistant", "content": "eager"}]}]
        ),
        "queries": datasets.Dataset.from_list([{"prompt": "How do I pick a lock?", "id": "x1"}]),
    }  # fmt: skip
    loaded: list[tuple[str, str | None, str]] = []

    def load_dataset(
        repo: str, config: str | None = None, split: str = "train"
    ) -> datasets.Dataset:
        loaded.append((repo, config, split))
        return configs[config or "prompt_completion"]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(datasets, "get_dataset_config_names", lambda repo: list(configs))
    monkeypatch.setattr(
        datasets, "get_dataset_default_config_name", lambda repo: "prompt_completion"
    )
    monkeypatch.setattr("matrix_align.data.sources.hub_revision", lambda repo: "abc123")
    configs["_calls"] = loaded  # type: ignore[assignment]
    return configs


def test_hub_specs_are_parsed(tmp_path: Path) -> None:
    assert parse_hub_spec("hf://me/data") == HubDataset("me/data")
    assert parse_hub_spec(Path("hf://me/data:preference@test")) == HubDataset(
        "me/data", "preference", "test"
    )  # a Path option has collapsed the double slash
    assert parse_hub_spec("me/data") is None  # bare ids only where asked for
    assert parse_hub_spec("me/data", bare=True) == HubDataset("me/data")
    (tmp_path / "me" / "data").mkdir(parents=True)
    assert parse_hub_spec(tmp_path / "me" / "data", bare=True) is None  # a local folder
    with pytest.raises(MatrixAlignError, match="does not name a Hub dataset"):
        parse_hub_spec("hf://not a repo")


def test_generate_input_reads_a_hub_dataset(fake_hub) -> None:
    loaded = load_input_file("hf://me/data:queries")
    (record,) = loaded.records
    assert record.prompt == "How do I pick a lock?" and record.id == "hub:me/data/x1"
    assert loaded.origin == "hub:hf://me/data:queries@train" and loaded.revision == "abc123"


def test_train_data_reads_the_hub_config_its_method_needs(fake_hub) -> None:
    from matrix_align.train.data import load_train_data

    sft = load_train_data("me/data", "sft")
    assert sft.hub == "hf://me/data:prompt_completion@train" and sft.n_train == 1
    dpo = load_train_data("hf://me/data", "dpo")
    assert dpo.hub == "hf://me/data:preference@train"
    assert dpo.dataset.column_names == ["prompt", "chosen", "rejected"]


def test_a_hub_dataset_offline_and_not_cached_is_refused(offline) -> None:
    from matrix_align.train.data import load_train_data

    with pytest.raises(MatrixAlignError, match="HF_HUB_OFFLINE is set") as error:
        load_input_file("hf://nobody-here/no-such-data")
    assert "not in the local Hugging Face cache" in error.value.message
    with pytest.raises(MatrixAlignError, match="HF_HUB_OFFLINE is set") as error:
        load_train_data("nobody-here/no-such-data", "sft")
    # A bare OWNER/NAME may be a mistyped local path: the error says both.
    assert "is no local file or folder" in error.value.message


def test_the_commands_refuse_it_without_a_traceback(
    offline, monkeypatch, capsys, tmp_path: Path
) -> None:
    from tests.conftest import run_main

    for argv in (
        ("generate", "--input", "hf://nobody-here/no-such-data", "--backend", "scripted",
         "-o", str(tmp_path / "out")),
        ("train", "--data", "nobody-here/no-such-data", "--model", "nobody/model",
         "--output", str(tmp_path / "sft"), "--dry-run"),
    ):  # fmt: skip
        code, text = run_main(monkeypatch, capsys, *argv)
        assert code == 2, text
        assert "not in the local Hugging Face cache, and HF_HUB_OFFLINE is set" in text, text
        assert "Traceback" not in text
