"""Pipeline configs: a union on ``task``, validated per task at load, keys named on error."""

from pathlib import Path

import pytest

from pipelines.tasks import CONFIGS, TASKS, ConfigError, load_config, option_help
from pipelines.training.deepspeed_config import build_deepspeed_config

CONFIG_DIR = Path(__file__).resolve().parents[3] / "pipelines" / "configs"
SHIPPED = sorted(CONFIG_DIR.glob("*.yaml"))


def test_every_task_ships_a_paper_size_and_a_debug_config():
    names = {p.stem for p in SHIPPED}
    for task in TASKS:
        assert {task, f"{task}_debug"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    cfg = load_config(path)
    assert path.stem.removesuffix("_debug") == cfg.task
    assert isinstance(cfg, CONFIGS[cfg.task])
    ds = build_deepspeed_config(cfg.deepspeed, cfg.train.num_workers)
    assert ds["train_batch_size"] == (
        cfg.deepspeed.micro_batch_size
        * cfg.deepspeed.gradient_accumulation_steps
        * cfg.train.num_workers
    )
    if path.stem.endswith("_debug"):  # CPU: 2 workers, fp32
        assert (cfg.train.num_workers, cfg.train.use_gpu, cfg.deepspeed.precision) == (
            2,
            False,
            "fp32",
        )
    else:  # the papers' sizes on a GPU cluster
        assert cfg.train.use_gpu and cfg.deepspeed.precision == "bf16"


def write(tmp_path, text):
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


IMAGE = "task: image_classification\nmodel: {num_classes: 3}\n"


def test_unknown_key_fails_at_load_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.epochz: unknown key"):
        load_config(write(tmp_path, IMAGE + "train: {epochz: 3}\n"))


def test_a_key_of_another_task_is_refused_naming_that_task(tmp_path):
    text = "task: optical_flow\nmodel: {image_size: [8, 8]}\nloss: {label_smoothing: 0.1}\n"
    with pytest.raises(ConfigError, match=r"loss: unknown key for task optical_flow \(a key of"):
        load_config(write(tmp_path, text))
    text = IMAGE + "decode: {eval_chunks: 2}\n"
    with pytest.raises(ConfigError, match=r"decode: .*a key of kinetics_autoencoding"):
        load_config(write(tmp_path, text))
    # The model section is validated as the task's model: a flow key in an image model.
    with pytest.raises(ConfigError, match=r"model\.patch_size.*|model\.image_size: unknown key"):
        load_config(
            write(
                tmp_path, IMAGE.replace("{num_classes: 3}", "{num_classes: 3, image_size: [8, 8]}")
            )
        )


def test_a_config_must_name_its_task(tmp_path):
    with pytest.raises(ConfigError, match=r"'task' must be one of .*got None"):
        load_config(write(tmp_path, "model: {num_classes: 3}\n"))


def test_bad_value_fails_at_load_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"deepspeed\.zero_stage: .*got 5"):
        load_config(write(tmp_path, IMAGE + "deepspeed: {zero_stage: 5}\n"))
    with pytest.raises(
        ConfigError, match=r"train\.epochs: Input should be greater than or equal to 1"
    ):
        load_config(write(tmp_path, IMAGE + "train: {epochs: -1}\n"))
    with pytest.raises(ConfigError, match=r"min_lr=0.1 must not exceed lr=0.01"):
        load_config(write(tmp_path, IMAGE + "optimizer: {lr: 0.01, min_lr: 0.1}\n"))


def test_model_and_shards_must_fit_together(tmp_path):
    text = IMAGE.replace("{num_classes: 3}", "{num_classes: 3, image_shape: [64, 64, 3]}")
    with pytest.raises(ConfigError, match=r"larger than the preprocess.crop_size=32"):
        load_config(write(tmp_path, text + "preprocess: {resize_to: 32, crop_size: 32}\n"))
    flow = (
        "task: optical_flow\nmodel: {image_size: [48, 64]}\npreprocess: {height: 40, width: 64}\n"
    )
    with pytest.raises(ConfigError, match=r"model.image_size=\(48, 64\) is larger"):
        load_config(write(tmp_path, flow))


def test_overrides_apply_and_are_validated(tmp_path):
    p = write(tmp_path, IMAGE)
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
    from pipelines.config.sections import DeepSpeedSettings

    z3 = build_deepspeed_config(DeepSpeedSettings(zero_stage=3, precision="bf16"), 2)
    assert z3["zero_optimization"]["stage3_param_persistence_threshold"] == 0
    assert z3["bf16"]["enabled"] is True
    z0 = build_deepspeed_config(
        DeepSpeedSettings(zero_stage=0, micro_batch_size=4, gradient_accumulation_steps=3), 2
    )
    assert z0["train_batch_size"] == 24 and z0["zero_optimization"] == {"stage": 0}
    with pytest.raises(ValueError, match="world_size must be >= 1, got 0"):
        build_deepspeed_config(DeepSpeedSettings(), 0)


def test_option_help_lists_every_key_per_task():
    text = option_help()
    for key in (
        "task: optical_flow",
        "model.encoder.num_latents",
        "deepspeed.zero_stage",
        "train.checkpoint_every_steps",
        "loss.label_smoothing",
        "decode.train_pixels",
        "augment.random_crop",
    ):
        assert key in text
    assert "decode.train_pixels" not in option_help("image_classification")
