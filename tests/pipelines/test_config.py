from pathlib import Path

import pytest

from pipelines.config import ConfigError, PipelineConfig, load_config, option_help
from pipelines.deepspeed_config import build_deepspeed_config

SHIPPED = sorted((Path(__file__).resolve().parents[2] / "pipelines" / "configs").glob("*.yaml"))


def test_configs_are_shipped():
    assert {p.stem for p in SHIPPED} >= {"demo", "imagenet"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    cfg = load_config(path)
    assert isinstance(cfg, PipelineConfig)
    ds = build_deepspeed_config(cfg.deepspeed, cfg.train.num_workers)
    assert ds["train_batch_size"] == (
        cfg.deepspeed.micro_batch_size
        * cfg.deepspeed.gradient_accumulation_steps
        * cfg.train.num_workers
    )


def write(tmp_path, text):
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_unknown_key_fails_at_load_naming_the_key(tmp_path):
    p = write(tmp_path, "model: {num_classes: 3}\ntrain: {epochz: 3}\n")
    with pytest.raises(ConfigError, match=r"train\.epochz: unknown key"):
        load_config(p)


def test_bad_value_fails_at_load_naming_the_key(tmp_path):
    p = write(tmp_path, "model: {num_classes: 3}\ndeepspeed: {zero_stage: 5}\n")
    with pytest.raises(ConfigError, match=r"deepspeed\.zero_stage: .*got 5"):
        load_config(p)
    p = write(tmp_path, "model: {num_classes: 3}\ntrain: {epochs: -1}\n")
    with pytest.raises(
        ConfigError, match=r"train\.epochs: Input should be greater than or equal to 1"
    ):
        load_config(p)


def test_cross_field_invariant_is_checked(tmp_path):
    p = write(tmp_path, "model: {num_classes: 3, image_shape: [64, 64, 3]}\n")
    with pytest.raises(ConfigError, match=r"does not match preprocess.crop_size=224"):
        load_config(p)


def test_overrides_apply_and_are_validated(tmp_path):
    p = write(tmp_path, "model: {num_classes: 3}\n")
    cfg = load_config(p, ["train.epochs=7", "deepspeed.zero_stage=3", "optimizer.lr=3e-4"])
    assert (cfg.train.epochs, cfg.deepspeed.zero_stage, cfg.optimizer.lr) == (7, 3, 3e-4)
    with pytest.raises(ConfigError, match=r"expected KEY=VALUE"):
        load_config(p, ["train.epochs"])
    with pytest.raises(ConfigError, match=r"train\.nope: unknown key"):
        load_config(p, ["train.nope=1"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "model: [unclosed\n"))


def test_deepspeed_config_per_stage():
    from pipelines.config import DeepSpeedSettings

    z3 = build_deepspeed_config(DeepSpeedSettings(zero_stage=3, precision="bf16"), 2)
    assert z3["zero_optimization"]["stage3_param_persistence_threshold"] == 0
    assert z3["bf16"]["enabled"] is True
    z0 = build_deepspeed_config(
        DeepSpeedSettings(zero_stage=0, micro_batch_size=4, gradient_accumulation_steps=3), 2
    )
    assert z0["train_batch_size"] == 24 and z0["zero_optimization"] == {"stage": 0}
    with pytest.raises(ValueError, match="world_size must be >= 1, got 0"):
        build_deepspeed_config(DeepSpeedSettings(), 0)


def test_option_help_lists_every_key():
    text = option_help()
    for key in (
        "model.encoder.num_latents",
        "deepspeed.zero_stage",
        "train.cpus_per_worker",
        "tracking.alias",
    ):
        assert key in text
