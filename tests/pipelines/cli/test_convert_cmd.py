"""``perceiver-pipeline convert`` on checkpoints written by transformers' save_pretrained."""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only, never download

import pytest
import torch
import transformers

from perceiver.adapters import extract_flow_patches
from perceiver.config import ImageClassifierConfig, MaskedLMConfig
from perceiver.convert import load_converted
from perceiver.portable import PortableModel
from pipelines.cli.convert_cmd import add_convert_args, description, max_relative_error, run

SMALL = dict(
    num_latents=8,
    d_latents=32,
    num_blocks=2,
    num_self_attends_per_block=2,
    num_self_attention_heads=4,
    num_cross_attention_heads=1,
    num_labels=5,
    attention_probs_dropout_prob=0.0,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="perceiver-pipeline convert",
        description=description(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_convert_args(p)
    return p


def parse(*argv: str) -> argparse.Namespace:
    return parser().parse_args(list(argv))


def save_hf(tmp_path, name: str, **overrides) -> tuple[torch.nn.Module, os.PathLike]:
    torch.manual_seed(0)
    config = transformers.PerceiverConfig(**{**SMALL, **overrides})
    model = getattr(transformers, name)(config)
    with torch.no_grad():  # move every weight off its initial value
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn_like(tensor))
    folder = tmp_path / "hf"
    model.save_pretrained(folder)
    return model.eval(), folder


def test_converts_an_image_classifier_checkpoint(tmp_path, capsys):
    theirs, folder = save_hf(tmp_path, "PerceiverForImageClassificationFourier", image_size=32)
    out = tmp_path / "ours"
    assert run(parse("--from-transformers", str(folder), "--out", str(out))) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "conversion.json",
        "model.safetensors",
    ]
    config = json.loads((out / "config.json").read_text())
    assert ImageClassifierConfig.model_validate(config).task == "image_classification"
    record = json.loads((out / "conversion.json").read_text())
    assert record["source_class"] == "PerceiverForImageClassificationFourier"
    assert record["transformers_version"] == transformers.__version__
    assert 0 <= record["max_relative_error"] <= 1e-4 and record["date"]
    assert "converted PerceiverForImageClassificationFourier" in capsys.readouterr().out

    ours = load_converted(out)
    assert isinstance(ours, PortableModel) and not ours.training
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert max_relative_error(ours(x), theirs(inputs=x).logits) < 1e-4


def test_converts_a_masked_lm_checkpoint_with_padding(tmp_path):
    theirs, folder = save_hf(
        tmp_path, "PerceiverForMaskedLM", d_model=32, vocab_size=40, max_position_embeddings=16
    )
    out = tmp_path / "ours"
    assert run(parse("--from-transformers", str(folder), "--out", str(out), "--seed", "3")) == 0
    ours = load_converted(out)
    assert isinstance(ours.config, MaskedLMConfig)
    ids = torch.randint(0, 40, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0
    with torch.no_grad():
        expected = theirs(inputs=ids, attention_mask=mask).logits
        assert max_relative_error(ours(ids, attention_mask=mask), expected) < 1e-4


def test_refuses_to_overwrite_without_the_flag(tmp_path):
    _, folder = save_hf(tmp_path, "PerceiverForImageClassificationFourier", image_size=16)
    out = tmp_path / "ours"
    args = ["--from-transformers", str(folder), "--out", str(out)]
    assert run(parse(*args)) == 0
    with pytest.raises(ValueError, match="already holds a conversion"):
        run(parse(*args))
    assert run(parse(*args, "--overwrite")) == 0


def test_folder_without_config_json_names_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"config\.json not found.*save_pretrained"):
        run(parse("--from-transformers", str(tmp_path), "--out", str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


def test_unsupported_architecture_is_named(tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["PerceiverModel"]}))
    with pytest.raises(ValueError, match="unsupported architecture 'PerceiverModel'"):
        run(parse("--from-transformers", str(folder), "--out", str(tmp_path / "out")))
    (folder / "config.json").write_text(json.dumps({"model_type": "perceiver"}))
    with pytest.raises(ValueError, match="no 'architectures' entry"):
        run(parse("--from-transformers", str(folder), "--out", str(tmp_path / "out")))


def test_a_conversion_outside_the_tolerance_writes_nothing(tmp_path):
    _, folder = save_hf(tmp_path, "PerceiverForImageClassificationFourier", image_size=16)
    out = tmp_path / "ours"
    with pytest.raises(ValueError, match=r"max relative error .* > tolerance 1e-12"):
        run(parse("--from-transformers", str(folder), "--out", str(out), "--tolerance", "1e-12"))
    assert not out.exists()


def test_help_explains_inputs_and_outputs(capsys):
    with pytest.raises(SystemExit):
        parse("--help")
    text = capsys.readouterr().out
    for expected in ("save_pretrained", "conversion.json", "load_converted", ".[hf]", "--out"):
        assert expected in text


def test_converts_a_multimodal_autoencoder_checkpoint(tmp_path):
    frames, size, spf = 2, 8, 16
    theirs, folder = save_hf(
        tmp_path,
        "PerceiverForMultimodalAutoencoding",
        num_frames=frames,
        image_size=size,
        audio_samples_per_frame=spf,
        samples_per_patch=4,
        output_shape=[1, frames, size, size],
        output_num_channels=16,
    )
    out = tmp_path / "ours"
    assert run(parse("--from-transformers", str(folder), "--out", str(out))) == 0
    record = json.loads((out / "conversion.json").read_text())
    assert record["max_relative_error"] < 1e-4
    assert record["check_input"]["shape"]["image"] == [2, frames, 3, size, size]
    ours = load_converted(out)
    torch.manual_seed(3)
    inputs = {
        "audio": torch.randn(1, frames * spf, 1),
        "image": torch.randn(1, frames, 3, size, size),
        "label": torch.zeros(1, 5),
    }
    points = {"audio": torch.arange(3), "image": torch.arange(40, 90), "label": None}
    with torch.no_grad():
        expected = theirs(inputs=inputs, subsampled_output_points=points).logits
        got = ours(inputs, output_indices=points)
    assert max_relative_error(got, expected) < 1e-4


def test_converts_an_optical_flow_checkpoint_to_a_model_of_raw_frames(tmp_path):
    """The converted flow model takes the shards' uint8 frame pairs and returns pixels:
    Hugging Face's output on the 3x3 patches of the frames scaled to [-1, 1], times 20."""
    theirs, folder = save_hf(tmp_path, "PerceiverForOpticalFlow", train_size=[12, 16])
    out = tmp_path / "ours"
    assert run(parse("--from-transformers", str(folder), "--out", str(out))) == 0
    record = json.loads((out / "conversion.json").read_text())
    assert record["max_relative_error"] < 1e-4
    assert record["check_input"]["shape"] == [2, 2, 12, 16, 3]
    ours = load_converted(out)
    frames = torch.randint(0, 256, (2, 2, 12, 16, 3), dtype=torch.uint8)
    patches = extract_flow_patches(frames.float() / 255.0 * 2 - 1)  # (B, 2, 27, H, W)
    with torch.no_grad():
        expected = theirs(inputs=patches).logits * 20.0
        assert max_relative_error(ours(frames), expected) < 1e-4
