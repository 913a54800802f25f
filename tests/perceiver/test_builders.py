import io

import pytest
import torch
from pydantic import ValidationError

from perceiver import ImageClassifierConfig, image_classifier
from perceiver.adapters.image import ImageInputAdapter


def small_config(**overrides) -> ImageClassifierConfig:
    base = dict(
        image_shape=(32, 32, 3),
        num_classes=4,
        num_frequency_bands=4,
        encoder=dict(
            num_latents=8,
            num_latent_channels=16,
            num_self_attention_heads=2,
            num_self_attention_layers_per_block=1,
            num_self_attention_blocks=2,
        ),
    )
    base.update(overrides)
    return ImageClassifierConfig.model_validate(base)


def test_forward_backward_shapes():
    torch.manual_seed(0)
    model = image_classifier(small_config())
    x = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    logits = model(x)
    assert logits.shape == (3, 4)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_uint8_and_unit_float_inputs_agree():
    torch.manual_seed(0)
    model = image_classifier(small_config()).eval()
    x = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    torch.testing.assert_close(model(x), model(x.float() / 255.0))


def test_latent_blocks_share_weights():
    one = image_classifier(
        small_config(
            encoder=dict(
                num_latents=8,
                num_latent_channels=16,
                num_self_attention_heads=2,
                num_self_attention_blocks=1,
            )
        )
    )
    many = image_classifier(
        small_config(
            encoder=dict(
                num_latents=8,
                num_latent_channels=16,
                num_self_attention_heads=2,
                num_self_attention_blocks=6,
            )
        )
    )
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(one) == count(many)


def test_state_dict_round_trip():
    torch.manual_seed(0)
    a = image_classifier(small_config()).eval()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    b = image_classifier(small_config()).eval()
    b.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    x = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    torch.testing.assert_close(a(x), b(x))


def test_adapter_rejects_wrong_image_shape():
    adapter = ImageInputAdapter((32, 32, 3), 4)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 32, 32, 3\)"):
        adapter(torch.zeros(1, 16, 16, 3))


def test_config_errors_name_the_field():
    with pytest.raises(ValidationError, match="num_classes"):
        ImageClassifierConfig.model_validate({"image_shape": (32, 32, 3)})
    with pytest.raises(ValidationError, match="num_latent_channels=30 must be divisible"):
        small_config(encoder=dict(num_latent_channels=30, num_self_attention_heads=4))
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        small_config(encoder=dict(num_latentz=8))
