"""Each task's pieces on their own: augmentation, loss, records, metrics, shard checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perceiver.portable import PortableModel
from pipelines.tasks import TASKS, builtin_config_path, load_config, task_for
from pipelines.tasks.base import to_tensors


def task_of(name: str, *overrides: str):
    return task_for(load_config(builtin_config_path(f"{name}_debug"), list(overrides)))


def synthetic_batch(task, n: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """A batch of the shards' columns at the debug config's stored sizes."""
    rng = np.random.default_rng(seed)
    p = task.cfg.preprocess
    m = task.cfg.model
    if task.name == "image_classification":
        side = p.crop_size
        return {
            "image": rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8),
            "label": rng.integers(0, m.num_classes, n),
        }
    if task.name == "video_classification":
        return {
            "frames": rng.integers(0, 256, (n, p.num_frames, p.size, p.size, 3), dtype=np.uint8),
            "label": rng.integers(0, m.num_classes, n),
        }
    if task.name == "audio_classification":
        return {
            "audio": rng.uniform(-1, 1, (n, p.window_samples)).astype(np.float32),
            "labels": (rng.random((n, m.num_classes)) < 0.4).astype(np.uint8),
        }
    if task.name == "kinetics_autoencoding":
        return {
            "frames": rng.integers(0, 256, (n, p.num_frames, p.size, p.size, 3), dtype=np.uint8),
            "audio": rng.uniform(-1, 1, (n, p.audio_samples)).astype(np.float32),
            "label": rng.integers(0, m.num_classes, n),
        }
    return {
        "frames": rng.integers(0, 256, (n, 2, p.height, p.width, 3), dtype=np.uint8),
        "flow": rng.normal(0, 3, (n, p.height, p.width, 2)).astype(np.float32),
        "valid": (rng.random((n, p.height, p.width)) < 0.8).astype(np.uint8),
    }


@pytest.mark.parametrize("name", list(TASKS))
def test_training_step_and_scoring_give_the_task_s_metrics(name):
    torch.manual_seed(0)
    task = task_of(name)
    model = task.build_model()
    batch = synthetic_batch(task)
    rng = np.random.default_rng(1)
    train = to_tensors(task.train_inputs(batch, rng))
    loss, stats = task.loss(model.train(), train, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    # Every weight learns (the Kinetics mask tokens of never-masked audio and video aside).
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert all("mask_tokens" in n for n in unused), unused
    assert all(np.isfinite(v) for v in stats.values())
    with torch.no_grad():
        records = task.predict(model.eval(), to_tensors(task.eval_inputs(batch)))
    assert all(len(v) == 3 for v in records.values())
    metrics = task.metrics(records)
    assert task.metric in metrics and all(k.startswith("val_") for k in metrics)
    assert task.input_positions() > 0


@pytest.mark.parametrize("name", list(TASKS))
def test_the_logged_model_takes_the_stored_columns_and_scores_like_evaluation(name):
    """``PortableModel(input_crop=task.input_crop())`` on a stored batch = the model on the
    evaluation transform's batch."""
    torch.manual_seed(0)
    task = task_of(name)
    model = task.build_model().eval()
    logged = PortableModel(task.cfg.model, model.state_dict(), task.input_crop()).eval()
    batch = synthetic_batch(task, n=2)
    stored = task.model_inputs(to_tensors(batch))
    scored = task.model_inputs(to_tensors(task.eval_inputs(batch)))
    with torch.no_grad():
        a, b = logged(stored), model(scored)
    if isinstance(a, dict):
        for key in a:
            torch.testing.assert_close(a[key], b[key])
    else:
        torch.testing.assert_close(a, b)


def test_flow_crops_frames_flow_and_mask_at_the_same_window():
    task = task_of("optical_flow")
    p = task.cfg.preprocess
    y, x = np.mgrid[0 : p.height, 0 : p.width]
    frames = np.zeros((1, 2, p.height, p.width, 3), dtype=np.uint8)
    frames[0, :, :, :, 0], frames[0, :, :, :, 1] = y, x  # each pixel holds its coordinates
    flow = np.stack([x, y], axis=-1)[None].astype(np.float32)  # (1, H, W, 2): (u, v) = (x, y)
    valid = ((y + x) % 2).astype(np.uint8)[None]
    batch = {"frames": frames, "flow": flow, "valid": valid}
    for seed in range(5):
        out = task.train_inputs(batch, np.random.default_rng(seed))
        h, w = task.size
        assert out["frames"].shape == (1, 2, h, w, 3) and out["flow"].shape == (1, h, w, 2)
        np.testing.assert_array_equal(out["frames"][0, 1, :, :, 1], out["flow"][0, :, :, 0])
        np.testing.assert_array_equal(out["frames"][0, 0, :, :, 0], out["flow"][0, :, :, 1])
        np.testing.assert_array_equal(
            out["valid"][0], (out["flow"][0, :, :, 0] + out["flow"][0, :, :, 1]) % 2
        )
    centre = task.eval_inputs(batch)
    top, left = (p.height - h) // 2, (p.width - w) // 2
    assert centre["flow"][0, 0, 0, 1] == top and centre["flow"][0, 0, 0, 0] == left


def test_image_augmentation_crops_and_flips_and_evaluation_takes_the_centre():
    task = task_of("image_classification", "augment.flip=true")
    side = task.cfg.preprocess.crop_size
    h, w = task.size
    image = np.zeros((1, side, side, 3), dtype=np.uint8)
    image[0, :, :, 0] = np.arange(side)[None, :]  # column index
    flipped = 0
    for seed in range(12):
        crop = task.train_inputs(
            {"image": image, "label": np.zeros(1)}, np.random.default_rng(seed)
        )
        cols = crop["image"][0, 0, :, 0].astype(int)
        assert crop["image"].shape == (1, h, w, 3)
        assert abs(np.diff(cols)).tolist() == [1] * (w - 1)  # a contiguous window
        flipped += cols[0] > cols[-1]
    assert 0 < flipped < 12  # both orientations happen
    centre = task.eval_inputs({"image": image})["image"][0, 0, :, 0]
    assert centre[0] == (side - w) // 2


def test_kinetics_training_decodes_a_random_subsample_of_outputs():
    task = task_of("kinetics_autoencoding")
    seen = {}

    class Spy(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, inputs, output_indices):
            seen.update({k: (None if v is None else len(v)) for k, v in output_indices.items()})
            return self.model(inputs, output_indices)

    batch = to_tensors(synthetic_batch(task, n=2))
    loss, _ = task.loss(Spy(task.build_model()), batch, torch.Generator().manual_seed(0))
    d, m = task.cfg.decode, task.cfg.model
    assert seen == {
        "image": d.train_pixels,
        "audio": -(-d.train_audio_samples // m.samples_per_patch),
        "label": None,
    }
    assert torch.isfinite(loss)


def test_shards_of_another_modality_are_refused_naming_both(task_shards):
    from preprocessing.engine.manifest import read_manifest

    flow_shards = task_shards("optical_flow").shards
    manifest = read_manifest(flow_shards)
    with pytest.raises(ValueError, match=r"trains on 'image' shards, but .* holds 'autoflow'"):
        task_of("image_classification").check_shards(manifest, str(flow_shards))
    # Same modality, but the model's class count and input size do not fit.
    image_shards = task_shards("image_classification").shards
    images = read_manifest(image_shards)
    with pytest.raises(ValueError, match=r"model.num_classes=7 but the shards .* have 10"):
        task_of("image_classification", "model.num_classes=7").check_shards(
            images, str(image_shards)
        )
    # A manifest whose schema lacks a column the task reads (shards of an older layout).
    older = images.model_copy(update={"schema_": {"image": "...", "source": "...", "key": "..."}})
    with pytest.raises(ValueError, match=r"reads the columns \['label'\], which the shards"):
        task_of("image_classification").check_shards(older, str(image_shards))
    flow = task_of("optical_flow", "preprocess.height=64", "model.image_size=[48, 48]")
    with pytest.raises(ValueError, match=r"model.image_size=\(48, 48\) but the shards .* 40x56"):
        flow.check_shards(manifest, str(flow_shards))
