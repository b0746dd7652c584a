"""The shipped `accelerate launch` configs parse with the installed accelerate and say what
their names promise (a typo in a key would otherwise surface only on a multi-GPU machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
EXPECTED = {
    "ddp.yaml": ("MULTI_GPU", None),
    "deepspeed_zero2.yaml": ("DEEPSPEED", 2),
    "deepspeed_zero3.yaml": ("DEEPSPEED", 3),
    "fsdp.yaml": ("FSDP", None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_config_parses(name: str) -> None:
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(CONFIGS / name))
    kind, stage = EXPECTED[name]
    assert config.distributed_type.value == kind
    assert config.mixed_precision == "bf16"
    if stage is not None:
        assert config.deepspeed_config["zero_stage"] == stage
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"


def test_sharded_launch_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    from matrix_align.train.models import sharded_launch

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
