"""The shipped `accelerate launch` configs are package data reachable from an installed copy,
parse with the installed accelerate and say what their names promise (a typo in a key would
otherwise surface only on a multi-GPU machine)."""

from __future__ import annotations

import sys

import pytest

from matrix_align.cli.app import main
from matrix_align.errors import EXIT_USAGE, MatrixAlignError
from matrix_align.train.accelerate_configs import ACCELERATE_CONFIGS, accelerate_config

EXPECTED = {
    "ddp": ("MULTI_GPU", None),
    "deepspeed_zero2": ("DEEPSPEED", 2),
    "deepspeed_zero3": ("DEEPSPEED", 3),
    "fsdp": ("FSDP", None),
}


def test_every_shipped_config_is_listed_and_inside_the_package() -> None:
    assert set(ACCELERATE_CONFIGS) == set(EXPECTED)
    for name in EXPECTED:
        path = accelerate_config(name)
        assert path.is_file() and path.parent.name == "accelerate"
        assert path.parents[1].name == "train" and path.parents[2].name == "matrix_align"
    with pytest.raises(MatrixAlignError, match="Unknown --accelerate-config 'zero4'") as caught:
        accelerate_config("zero4")
    assert "deepspeed_zero2" in (caught.value.hint or "")


def test_train_prints_a_config_path_for_accelerate_launch(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["matrix-align", "train", "--accelerate-config", "fsdp"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code in (0, None)
    assert capsys.readouterr().out.strip() == str(accelerate_config("fsdp"))
    monkeypatch.setattr(sys, "argv", ["matrix-align", "train", "--accelerate-config", "x"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == EXIT_USAGE and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_config_parses(name: str) -> None:
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(accelerate_config(name)))
    kind, stage = EXPECTED[name]
    assert config.distributed_type.value == kind
    assert config.mixed_precision == "bf16"
    if stage is not None:
        assert config.deepspeed_config["zero_stage"] == stage
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"


def test_sharded_launch_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    from matrix_align.llm.hf_models import sharded_launch

    for var in (
        "ACCELERATE_USE_FSDP",
        "ACCELERATE_USE_DEEPSPEED",
        "ACCELERATE_DEEPSPEED_ZERO_STAGE",
    ):
        monkeypatch.delenv(var, raising=False)
    assert not sharded_launch()
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    assert not sharded_launch()  # ZeRO-2 keeps whole weights on each GPU
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    assert sharded_launch()
