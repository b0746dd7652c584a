"""Pushing to the Hugging Face Hub, against a stand-in for ``HfApi``: what would be uploaded
(files, dataset card, model card), and one clear error before any work when it cannot be."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from matrix_align import hub
from matrix_align.cli.app import app
from matrix_align.data import sources
from matrix_align.data.generate import GenerateOptions, SourceSpec, build_plan, generate
from matrix_align.errors import EXIT_FAILED, EXIT_USAGE, MatrixAlignError
from matrix_align.llm.scripted import ScriptedModel
from matrix_align.simulation.config import SimulationConfig

KEY = "scripted:default"


class FakeHub:
    """Records create_repo and create_commit calls in place of the Hub."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import huggingface_hub

        self.repos: list[dict[str, Any]] = []
        self.commits: list[dict[str, Any]] = []
        self.sent: dict[str, str] = {}

        def create_repo(api, repo_id, **kwargs):  # noqa: ANN001, ANN202
            self.repos.append({"repo_id": repo_id, **kwargs})
            return f"https://huggingface.co/{repo_id}"

        def create_commit(api, **kwargs):  # noqa: ANN001, ANN202
            self.commits.append(kwargs)
            # What was sent, read now: a file pushed from a scratch folder is gone after.
            self.sent = {
                op.path_in_repo: Path(op.path_or_fileobj).read_text(errors="replace")
                for op in kwargs["operations"]
            }

        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(sources, "hub_status", lambda *a, **k: (True, "HTTP 200"))

    def uploaded(self) -> dict[str, str]:
        (commit,) = self.commits
        return {op.path_in_repo: op.path_or_fileobj for op in commit["operations"]}


def make_run(folder: Path) -> Path:
    config = SimulationConfig(n_roles=1, n_steps=1)
    plan = build_plan(
        [SourceSpec.parse("pku-saferlhf:matrix:2"), SourceSpec.parse("advbench:direct:1")],
        config=config,
        model_key=KEY,
        hub="never",
    )
    options = GenerateOptions(output=folder, export=False)
    asyncio.run(generate(plan, ScriptedModel.demo(), config, options, model_info={"key": KEY}))
    return folder


def test_export_pushes_the_dataset_with_its_card(tmp_path: Path, monkeypatch) -> None:
    run = make_run(tmp_path / "run")
    fake = FakeHub(monkeypatch)
    args = ["export", str(run), "--push-to-hub", "me/matrix-data", "--private"]
    monkeypatch.setattr("sys.argv", ["/bin/matrix-align", *args])  # what the card quotes
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert fake.repos == [
        {"repo_id": "me/matrix-data", "repo_type": "dataset", "private": True, "exist_ok": True}
    ]
    files = fake.uploaded()
    assert {"README.md", "provenance.json", "parquet/preference.parquet"} <= set(files)
    assert "jsonl/prompt_completion.jsonl" in files and "hf/messages/state.json" in files
    card = Path(files["README.md"]).read_text()
    assert "license: cc-by-nc-4.0" in card and "CC BY-NC 4.0 (non-commercial use only)" in card
    assert "config_name: prompt_completion" in card and "parquet/prompt_completion.parquet" in card
    assert "- pku-saferlhf: sample:" in card and "(revision sha256:" in card
    assert "model: `scripted`" in card and "matrix samples: 2" in card
    assert (
        "- exported with `matrix-align export " in card and "--push-to-hub me/matrix-data" in card
    )


def test_push_model_puts_the_weights_at_the_root_with_the_card(tmp_path, monkeypatch) -> None:
    out = tmp_path / "model"
    (out / "adapter").mkdir(parents=True)
    (out / "adapter" / "adapter_config.json").write_text("{}")
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"w")
    (out / "checkpoints" / "c1").mkdir(parents=True)
    (out / "checkpoints" / "c1" / "optimizer.pt").write_bytes(b"o")
    (out / "README.md").write_text("card")
    (out / "train_config.yaml").write_text("method: sft")
    fake = FakeHub(monkeypatch)
    url = hub.push_model(out, out / "adapter", "me/matrix-sft", private=False)
    assert url == "https://huggingface.co/me/matrix-sft"
    assert fake.repos[0]["repo_type"] == "model"
    assert set(fake.uploaded()) == {
        "adapter_config.json", "adapter_model.safetensors", "README.md", "train_config.yaml",
    }  # fmt: skip


def test_the_pushed_files_name_the_base_model_by_its_hub_id(tmp_path, monkeypatch) -> None:
    # `--model embedded` trains the bundled GGUF's dequantised copy in the user cache: PEFT
    # and the run's settings record that path, which the Hub must not get.
    import json

    import yaml

    cache = tmp_path / "home" / ".cache" / "matrix-align" / "hf-models" / "qwen2.5-coder-1.5b"
    out = tmp_path / "model"
    (out / "adapter").mkdir(parents=True)
    adapter_config = {"base_model_name_or_path": str(cache), "r": 8}
    (out / "adapter" / "adapter_config.json").write_text(json.dumps(adapter_config))
    (out / "README.md").write_text("---\nbase_model: Qwen/Qwen2.5-Coder-1.5B-Instruct\n---\ncard")
    (out / "train_config.yaml").write_text(yaml.safe_dump({"method": "sft", "model": str(cache)}))
    fake = FakeHub(monkeypatch)
    hub.push_model(out, out / "adapter", "me/matrix-sft", private=False)
    pushed = json.loads(fake.sent["adapter_config.json"])
    assert pushed == {"base_model_name_or_path": "Qwen/Qwen2.5-Coder-1.5B-Instruct", "r": 8}
    settings = yaml.safe_load(fake.sent["train_config.yaml"])
    assert settings == {"method": "sft", "model": "Qwen/Qwen2.5-Coder-1.5B-Instruct"}
    assert str(tmp_path) not in "".join(fake.sent.values())
    # The local files keep the path: loading here needs it.
    assert json.loads((out / "adapter" / "adapter_config.json").read_text()) == adapter_config

    # A base without a Hub id is named by its folder's name, never by its path.
    (out / "README.md").write_text("card without a header")
    fake.commits.clear()
    hub.push_model(out, out / "adapter", "me/matrix-sft", private=False)
    pushed = json.loads(fake.sent["adapter_config.json"])
    assert pushed["base_model_name_or_path"] == "qwen2.5-coder-1.5b"


def test_a_failed_upload_is_one_clear_error(tmp_path, monkeypatch) -> None:
    import huggingface_hub

    FakeHub(monkeypatch)

    def refuse(api, **kwargs):  # noqa: ANN001, ANN202
        raise RuntimeError("401 Unauthorized: invalid token")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", refuse)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(MatrixAlignError, match="Pushing to me/x failed: 401") as caught:
        hub.push_files({"f.txt": tmp_path / "f.txt"}, "me/x", repo_type="dataset",
                       private=False, message="m")  # fmt: skip
    assert "huggingface-cli login" in (caught.value.hint or "")
    # The work before the push ran: a failed run (exit 1), not bad input (exit 2).
    assert caught.value.exit_code == EXIT_FAILED


def test_offline_is_refused_before_any_work(tmp_path: Path, monkeypatch) -> None:
    run = make_run(tmp_path / "run")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(app, ["export", str(run), "--push-to-hub", "me/data"])
    assert isinstance(result.exception, MatrixAlignError)
    assert "HF_HUB_OFFLINE is set" in result.exception.message
    assert not (run / "exports").exists()  # nothing was exported


def test_private_without_a_push_is_refused_before_any_work(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    result = CliRunner().invoke(app, ["export", str(run), "--private"])
    assert isinstance(result.exception, MatrixAlignError)
    assert "--private applies to --push-to-hub" in result.exception.message
    assert "--push-to-hub OWNER/NAME" in (result.exception.hint or "")
    assert not (run / "exports").exists()  # nothing was exported
    result = CliRunner().invoke(app, ["train", "--data", str(run), "--private"])
    assert isinstance(result.exception, MatrixAlignError)
    assert "--private applies to --push-to-hub" in result.exception.message


def test_unreachable_hub_and_bad_repo_ids_are_refused(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "hub_status", lambda *a, **k: (False, "ConnectError"))
    with pytest.raises(MatrixAlignError, match="not reachable \\(ConnectError\\)"):
        hub.check_can_push("me/data")
    with pytest.raises(MatrixAlignError, match="not a Hub repository id") as caught:
        hub.check_can_push("no-owner")
    assert caught.value.exit_code == EXIT_USAGE  # checked before any work: nothing ran


def test_train_checks_the_hub_before_training(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "q", "completion": "a"}\n')
    import matrix_align.train.run as train_run

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr(train_run, "run_training", never)
    result = CliRunner().invoke(
        app, ["train", "--data", str(data), "--output", str(tmp_path / "o"),
              "--push-to-hub", "me/model"],
    )  # fmt: skip
    assert isinstance(result.exception, MatrixAlignError), result.output
    assert "HF_HUB_OFFLINE is set" in result.exception.message
