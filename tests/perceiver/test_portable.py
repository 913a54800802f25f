import io
import pickle

import pytest
import torch

from perceiver import ImageClassifierConfig, PerceiverIO, image_classifier
from perceiver.config import task_config
from perceiver.portable import PortableModel


def tiny() -> ImageClassifierConfig:
    return ImageClassifierConfig(
        image_shape=(16, 16, 3),
        num_classes=3,
        num_frequency_bands=2,
        encoder={"num_latents": 4, "num_latent_channels": 8, "num_self_attention_heads": 2},
    )


def test_pickles_as_config_and_weights_and_rebuilds():
    torch.manual_seed(0)
    model = PortableModel(tiny(), image_classifier(tiny()).state_dict()).eval()
    assert set(model.__getstate__()) == {"config", "state_dict", "training", "input_crop"}
    buf = io.BytesIO()
    torch.save(model, buf)
    loaded = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    assert isinstance(loaded.model, PerceiverIO) and not loaded.training
    x = torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)
    torch.testing.assert_close(loaded(x), model(x))


def test_unknown_task_is_a_value_error():
    with pytest.raises(ValueError, match="unknown task 'segmentation'"):
        task_config({"task": "segmentation"})


def test_a_key_of_another_task_is_refused_by_name():
    data = {"task": "optical_flow", "num_classes": 3}
    with pytest.raises(ValueError, match="invalid optical_flow config: num_classes: unknown key"):
        task_config(data)


def test_input_crop_takes_larger_stored_examples_and_survives_pickling():
    torch.manual_seed(0)
    weights = image_classifier(tiny()).state_dict()
    plain = PortableModel(tiny(), weights).eval()
    cropping = PortableModel(tiny(), weights, input_crop={1: 16, 2: 16}).eval()
    stored = torch.randint(0, 256, (2, 20, 22, 3), dtype=torch.uint8)  # larger than 16x16
    center = stored[:, 2:18, 3:19]
    loaded = pickle.loads(pickle.dumps(cropping))
    assert loaded.input_crop == {1: 16, 2: 16}
    with torch.no_grad():
        torch.testing.assert_close(loaded(stored), plain(center))
        torch.testing.assert_close(cropping(center), plain(center))  # right size: untouched
