"""Write the legacy model pickles that ``test_legacy_models.py`` loads (run once, at b9aa4dd).

Each ``<name>.pt`` is a ``PortableModel`` pickled the way MLflow's ``log_model(...,
serialization_format="pickle")`` pickles it (``torch.save`` with MLflow's pickle module),
by the code before the package layout changed, together with a seeded input and the
model's output on it (``<name>.io.pt``); ``converted/<name>/`` holds a few of them as
``save_converted`` writes a conversion. The new code must unpickle every one and give the same output.

This script imports the old module paths (``perceiver.config``, ``perceiver.flow_patches``)
and only runs at the commit that added it; later commits keep the files it wrote.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pytorch
import torch

from perceiver.config import load_task_config, shipped_configs
from perceiver.convert import save_converted
from perceiver.flow_patches import extract_flow_patches
from perceiver.portable import PortableModel, config_from_dict

OUT = Path(__file__).parent
# Also stored as ``perceiver-pipeline convert`` writes a conversion (config.json + safetensors).
CONVERTED = ("tiny_multimodal", "tiny_optical_flow", "tiny_mlm", "image_conv1x1_learned")


def _inputs(config) -> object:
    g = torch.Generator().manual_seed(0)
    task = config.task
    if task == "image_classification":
        h, w, c = config.image_shape
        shape = (2, c, h, w) if config.channels_first else (2, h, w, c)
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    if task in ("masked_language_modeling", "sequence_classification"):
        return torch.randint(0, config.vocab_size, (2, config.max_seq_len), generator=g)
    if task == "audio_classification":
        return torch.randn(2, config.num_samples, generator=g)
    if task == "video_classification":
        return torch.randint(0, 256, (2, *config.video_shape), generator=g, dtype=torch.uint8)
    if task == "point_cloud_classification":
        return torch.rand(2, 50, 3, generator=g) * 2 - 1
    if task == "optical_flow":
        frames, _, h, w = config.frames_shape
        return torch.randint(0, 256, (2, frames, h, w, 3), generator=g, dtype=torch.uint8)
    if task == "multimodal_autoencoding":
        t, (h, w) = config.num_frames, config.image_size
        return {
            "audio": torch.randn(2, config.num_audio_samples, 1, generator=g),
            "image": torch.rand(2, t, h, w, config.num_image_channels, generator=g),
            "label": torch.zeros(2, config.num_classes),
        }
    raise ValueError(task)


def _old_call(model: torch.nn.Module, config, x) -> object:
    if config.task == "optical_flow":
        # The old model took DeepMind's 3x3 patches of frames normalised to [-1, 1].
        return model(extract_flow_patches(x.float() / 255.0 * 2 - 1).float())
    return model(x)


VARIANTS = {
    "image_conv1x1_learned": {
        "task": "image_classification",
        "image_shape": [8, 8, 3],
        "num_classes": 3,
        "preprocessing": "conv1x1",
        "num_preprocessing_channels": 6,
        "position_encoding": "trainable",
        "num_position_channels": 5,
        "num_position_projection_channels": 4,
        "encoder": {"num_latents": 4, "num_latent_channels": 8, "num_self_attention_heads": 2},
    },
    "image_conv": {
        "task": "image_classification",
        "image_shape": [16, 16, 3],
        "num_classes": 3,
        "preprocessing": "conv",
        "num_preprocessing_channels": 6,
        "num_frequency_bands": 3,
        "pool_padding": 0,
        "encoder": {"num_latents": 4, "num_latent_channels": 8, "num_self_attention_heads": 2},
    },
    "image_patches": {
        "task": "image_classification",
        "image_shape": [8, 8, 3],
        "num_classes": 3,
        "preprocessing": "patches",
        "patch_size": 2,
        "num_preprocessing_channels": 7,
        "num_frequency_bands": 3,
        "encoder": {"num_latents": 4, "num_latent_channels": 8, "num_self_attention_heads": 2},
        "decoder": {"num_output_query_channels": 12, "num_cross_attention_heads": 2},
    },
    "sequence_classifier": {
        "task": "sequence_classification",
        "vocab_size": 30,
        "max_seq_len": 12,
        "num_input_channels": 8,
        "num_classes": 3,
        "encoder": {"num_latents": 4, "num_latent_channels": 8, "num_self_attention_heads": 2},
    },
}


def main() -> None:
    configs = {name: load_task_config(path) for name, path in shipped_configs().items()}
    configs = {n: c for n, c in configs.items() if n.startswith("tiny_")}
    configs |= {name: config_from_dict(data) for name, data in VARIANTS.items()}
    for name, config in sorted(configs.items()):
        torch.manual_seed(1)
        model = PortableModel(config).eval()
        x = _inputs(config)
        with torch.no_grad():
            y = _old_call(model, config, x)
        torch.save(model, OUT / f"{name}.pt", pickle_module=mlflow.pytorch.pickle_module)
        torch.save({"input": x, "output": y}, OUT / f"{name}.io.pt")
        if name in CONVERTED:
            save_converted(OUT / "converted" / name, config, model.model)
        print(name, (OUT / f"{name}.pt").stat().st_size)


if __name__ == "__main__":
    main()
