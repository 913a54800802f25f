"""``perceiver-pipeline convert``: a Hugging Face Perceiver checkpoint -> this package's model.

Thin entrypoint around ``perceiver.convert``: load the ``transformers`` class that the
checkpoint's config.json names, convert it, check both models agree on a seeded random
input, and write our config, weights and a conversion record. ``transformers`` is imported
only here, inside ``run`` (optional extra ``hf``); loading the result back
(``perceiver.convert.load_converted``) does not need it.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from pipelines.console import console

HF_CONFIG = "config.json"
CONVERSION_FILE = "conversion.json"
DEFAULT_TOLERANCE = 1e-4

DESCRIPTION = """\
Convert a Hugging Face transformers Perceiver checkpoint into this package's model.

--from-transformers is a folder written by transformers' save_pretrained (config.json +
model.safetensors); its config.json 'architectures' entry names the model class. Supported:
{supported}.
PerceiverModel (no task head) is not supported.

The model is converted (perceiver.convert.from_transformers_with_config), rebuilt from our
config alone, and both models are run on a seeded random input (images: (B, C, H, W) floats;
text: token ids with a padded attention mask; optical flow: (B, 2, H, W, 3) uint8 frame
pairs, given to transformers as the 3x3 patches of the frames scaled to [-1, 1], its output
times 20, since the converted model returns pixels as DeepMind's does; multimodal: audio,
video and label dicts, decoding a chunk of each modality). The
conversion fails, writing nothing, if the max relative error max|ours - theirs| / max|theirs|
exceeds --tolerance. Then --out gets:

  config.json        our pydantic task config (model_dump(mode="json"))
  model.safetensors  our state dict (tied weights stored once)
  conversion.json    source class, transformers version, max relative error, date

Load it without transformers: perceiver.convert.load_converted(OUT) -> PortableModel.
Needs the optional extra: pip install '.[hf]'. Nothing is downloaded."""


def description() -> str:
    from perceiver.convert import ALL_SUPPORTED_CLASSES

    return DESCRIPTION.format(supported=", ".join(ALL_SUPPORTED_CLASSES))


def add_convert_args(p: argparse.ArgumentParser) -> None:
    """The ``convert`` command's arguments."""
    p.add_argument(
        "--from-transformers",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder written by save_pretrained (config.json + model.safetensors)",
    )
    p.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder to write the conversion to"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the check input (default 0)")
    p.add_argument("--batch-size", type=int, default=2, help="check input batch (default 2)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"max relative error allowed (default {DEFAULT_TOLERANCE:g})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a conversion already in --out")


def _architecture(source: Path) -> str:
    """The model class that ``source/config.json`` names; ValueError if it cannot."""
    from perceiver.convert import ALL_SUPPORTED_CLASSES as SUPPORTED_CLASSES

    config_path = source / HF_CONFIG
    if not config_path.is_file():
        raise ValueError(
            f"{config_path} not found: --from-transformers must be a folder written by "
            "save_pretrained"
        )
    try:
        hf_config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{config_path} is not valid JSON: {exc}") from exc
    architectures = hf_config.get("architectures") if isinstance(hf_config, dict) else None
    if not architectures or not isinstance(architectures, list):
        raise ValueError(f"{config_path} has no 'architectures' entry naming the model class")
    name = str(architectures[0])
    if name not in SUPPORTED_CLASSES:
        raise ValueError(
            f"unsupported architecture {name!r} in {config_path}; supported: "
            f"{', '.join(SUPPORTED_CLASSES)}"
        )
    return name


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise ValueError(
            "converting needs the transformers package, which is not installed: pip install '.[hf]'"
        ) from exc
    return transformers


def check_inputs(config: Any, batch_size: int, seed: int) -> dict[str, Any]:
    """A seeded random input for the task of ``config``: {"inputs": ..., ["attention_mask"]}
    (multimodal: dict inputs and a ``subsampled_output_points`` chunk of every modality;
    optical flow: uint8 frame pairs, our model's input)."""
    from perceiver.config import (
        ImageClassifierConfig,
        MaskedLMConfig,
        MultimodalAutoencoderConfig,
        OpticalFlowConfig,
        SequenceClassifierConfig,
    )

    gen = torch.Generator().manual_seed(seed)
    if isinstance(config, ImageClassifierConfig):
        height, width, channels = config.image_shape
        shape = (channels, height, width) if config.channels_first else config.image_shape
        return {"inputs": torch.randn(batch_size, *shape, generator=gen)}
    if isinstance(config, MaskedLMConfig | SequenceClassifierConfig):
        length = config.max_seq_len
        ids = torch.randint(0, config.vocab_size, (batch_size, length), generator=gen)
        mask = torch.ones(batch_size, length, dtype=torch.long)
        mask[0, max(1, length // 2) :] = 0  # one padded row, so the mask is checked too
        return {"inputs": ids, "attention_mask": mask}
    if isinstance(config, OpticalFlowConfig):
        frames = (batch_size, *config.frames_shape)
        return {"inputs": torch.randint(0, 256, frames, generator=gen, dtype=torch.uint8)}
    if isinstance(config, MultimodalAutoencoderConfig):
        t, (h, w), c = config.num_frames, config.image_size, config.num_image_channels
        video = (t, c, h, w) if config.channels_first else (t, h, w, c)
        samples = t * config.audio_samples_per_frame
        return {
            "inputs": {
                "audio": torch.randn(batch_size, samples, 1, generator=gen),
                "image": torch.randn(batch_size, *video, generator=gen),
                "label": torch.zeros(batch_size, config.num_classes),
            },
            "subsampled_output_points": {
                "audio": torch.arange(min(8, samples // config.samples_per_patch)),
                "image": torch.arange(min(512, t * h * w)),
                "label": None,
            },
        }
    raise ValueError(f"no check input for task {getattr(config, 'task', None)!r}")


def run_transformers(hf_model: Any, config: Any, inputs: dict[str, Any]) -> Any:
    """Hugging Face's output for our check input, in our model's units.

    Optical flow: Hugging Face takes the 3x3 patches of frames scaled to [-1, 1] and returns
    the flow divided by DeepMind's flow scale; our model takes the frames and returns pixels.
    """
    from perceiver.adapters import extract_flow_patches
    from perceiver.config import OpticalFlowConfig

    if isinstance(config, OpticalFlowConfig):
        patches = extract_flow_patches(inputs["inputs"].float() / 255.0 * 2 - 1)
        return hf_model(inputs=patches).logits * config.decoder.flow_scale_factor
    return hf_model(**inputs).logits


def max_relative_error(ours: Any, theirs: Any) -> float:
    """max|ours - theirs| / max|theirs| (inf if the shapes differ); dicts: worst entry."""
    if isinstance(theirs, dict):
        if not isinstance(ours, dict) or set(ours) != set(theirs):
            return math.inf
        return max(max_relative_error(ours[k], theirs[k]) for k in theirs)
    if ours.shape != theirs.shape:
        return math.inf
    scale = theirs.abs().max().item() or 1.0
    return (ours.double() - theirs.double()).abs().max().item() / scale


def _ours(model: torch.nn.Module, inputs: dict[str, Any]) -> Any:
    if "subsampled_output_points" in inputs:
        points = inputs["subsampled_output_points"]
        return model(inputs["inputs"], subsampled_output_points=points)
    if "attention_mask" in inputs:
        return model(inputs["inputs"], attention_mask=inputs["attention_mask"])
    return model(inputs["inputs"])


def _shapes(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shapes(v) for k, v in value.items()}
    return list(value.shape)


def run(args: argparse.Namespace) -> int:
    """Convert ``args.from_transformers`` into ``args.out``; ValueError on any failure."""
    from perceiver.convert import (
        CONFIG_FILE,
        WEIGHTS_FILE,
        from_transformers_with_config,
        load_converted,
        save_converted,
    )
    from perceiver.portable import PortableModel

    source: Path = args.from_transformers
    out: Path = args.out
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not args.tolerance >= 0:
        raise ValueError(f"--tolerance must be >= 0, got {args.tolerance}")
    name = _architecture(source)
    existing = [f for f in (CONFIG_FILE, WEIGHTS_FILE, CONVERSION_FILE) if (out / f).exists()]
    if existing and not args.overwrite:
        raise ValueError(f"{out} already holds a conversion ({', '.join(existing)}); --overwrite")
    transformers = _import_transformers()
    hf_model = getattr(transformers, name).from_pretrained(source, local_files_only=True)
    hf_model = hf_model.float().eval()

    config, converted = from_transformers_with_config(hf_model)
    # Check the model as it will be loaded: rebuilt from the config, given the weights.
    ours = PortableModel(config, converted.state_dict()).eval()
    inputs = check_inputs(config, args.batch_size, args.seed)
    with torch.no_grad():
        theirs_out = run_transformers(hf_model, config, inputs)
        ours_out = _ours(ours, inputs)
    error = max_relative_error(ours_out, theirs_out)
    if not error <= args.tolerance:
        raise ValueError(
            f"converted {name} differs from transformers: max relative error {error:.3g} > "
            f"tolerance {args.tolerance:g} (output shapes {_shapes(ours_out)} vs "
            f"{_shapes(theirs_out)}); nothing written"
        )

    save_converted(out, config, ours.model)
    with torch.no_grad():
        reloaded = _ours(load_converted(out), inputs)
    if max_relative_error(reloaded, ours_out) != 0.0:
        raise ValueError(f"{out / WEIGHTS_FILE} does not reload to the checked model")
    record = {
        "source": str(source.resolve()),
        "source_class": name,
        "task": config.task,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "max_relative_error": error,
        "tolerance": args.tolerance,
        "check_input": {
            "seed": args.seed,
            "shape": _shapes(inputs["inputs"]),
            "attention_mask": "attention_mask" in inputs,
        },
        "num_parameters": sum(p.numel() for p in ours.parameters()),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / CONVERSION_FILE).write_text(json.dumps(record, indent=2) + "\n")
    console().say(
        f"converted {name} -> {out} (task {config.task}, max relative error {error:.2e}); "
        f"load with perceiver.convert.load_converted({str(out)!r})"
    )
    return 0
