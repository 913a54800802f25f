import pytest
import torch
from einops import rearrange
from pydantic import ValidationError

from perceiver import image_classifier
from perceiver.adapters import (
    Conv1x1ImageInputAdapter,
    ConvImageInputAdapter,
    ImageInputAdapter,
    PatchImageInputAdapter,
)
from perceiver.modules.position import fourier_features, num_fourier_channels, position_grid
from tests.perceiver.helpers import grads
from tests.perceiver.test_builders import small_config


def images(batch: int = 2, height: int = 32, width: int = 32) -> torch.Tensor:
    torch.manual_seed(7)
    return torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8)


def normalised(x: torch.Tensor) -> torch.Tensor:
    return ImageInputAdapter(tuple(x.shape[1:]), 1).normalize(x)  # (B, H, W, C)


def fourier(grid: tuple[int, int], bands: int) -> torch.Tensor:
    return fourier_features(position_grid(grid), bands, grid)  # (M, P)


# -- the pixel adapter, unchanged ------------------------------------------------------


def test_pixels_is_the_default_and_keeps_its_state_dict_keys():
    config = small_config()
    assert config.preprocessing == "pixels"
    model = image_classifier(config)
    assert type(model.encoder.input_adapter) is ImageInputAdapter
    keys = list(model.state_dict())
    assert keys[0] == "encoder.latents"
    assert not [k for k in keys if k.startswith("encoder.input_adapter")]
    assert keys[-2:] == ["decoder.head.weight", "decoder.head.bias"]
    assert len(keys) == 56


def test_pixel_adapter_output_is_normalised_pixels_then_fourier():
    x = images()
    adapter = ImageInputAdapter((32, 32, 3), 4)
    out = adapter(x)  # (B, 1024, 3 + 18)
    assert out.shape == (2, 32 * 32, 3 + num_fourier_channels(2, 4))
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    expected_pixels = ((x.float() / 255.0 - mean) / std).reshape(2, -1, 3)
    torch.testing.assert_close(out[..., :3], expected_pixels)
    torch.testing.assert_close(out[0, :, 3:], fourier((32, 32), 4))


# -- conv1x1 ---------------------------------------------------------------------------


def test_conv1x1_is_a_pointwise_convolution():
    torch.manual_seed(0)
    adapter = Conv1x1ImageInputAdapter((8, 6, 3), num_frequency_bands=2, num_output_channels=5)
    assert adapter.num_input_channels == 5 + num_fourier_channels(2, 2)
    x = images(2, 8, 6)
    out = adapter(x)
    assert out.shape == (2, 48, adapter.num_input_channels)
    weight = adapter.conv1x1.weight[:, :, None, None]  # (C_out, C, 1, 1)
    conv = torch.nn.functional.conv2d(
        rearrange(normalised(x), "b h w c -> b c h w"), weight, adapter.conv1x1.bias
    )  # (B, C_out, H, W)
    expected = rearrange(conv, "b c h w -> b (h w) c")
    torch.testing.assert_close(out[..., :5], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1, :, 5:], fourier((8, 6), 2))


def test_conv1x1_defaults_to_256_channels_in_the_classifier():
    model = image_classifier(small_config(preprocessing="conv1x1"))
    adapter = model.encoder.input_adapter
    assert isinstance(adapter, Conv1x1ImageInputAdapter)
    assert adapter.num_input_channels == 256 + num_fourier_channels(2, 4)


# -- patches ---------------------------------------------------------------------------


def test_patches_are_space_to_depth_with_fourier_over_the_patch_grid():
    adapter = PatchImageInputAdapter((8, 12, 3), patch_size=4, num_frequency_bands=3)
    assert adapter.grid_shape == (2, 3)
    assert adapter.num_input_channels == 4 * 4 * 3 + num_fourier_channels(2, 3)
    x = images(2, 8, 12)
    out = adapter(x)
    assert out.shape == (2, 6, adapter.num_input_channels)
    norm = normalised(x)
    # position 4 is patch row 1, column 1: pixels [4:8, 4:8], flattened (row, col, channel)
    torch.testing.assert_close(out[1, 4, :48], norm[1, 4:8, 4:8, :].reshape(-1))
    torch.testing.assert_close(out[0, :, 48:], fourier((2, 3), 3))


def test_patches_with_projection():
    torch.manual_seed(0)
    adapter = PatchImageInputAdapter((8, 8, 3), 2, 2, num_output_channels=10)
    assert adapter.projection is not None
    assert adapter(images(1, 8, 8)).shape == (1, 16, 10 + num_fourier_channels(2, 2))


def test_patch_size_must_divide_the_image():
    with pytest.raises(ValueError, match="patch_size=5 must be >= 1 and divide"):
        PatchImageInputAdapter((8, 8, 3), 5, 2)
    with pytest.raises(ValidationError, match="patch_size=5 must divide the image height 32"):
        small_config(preprocessing="patches", patch_size=5)


# -- conv ------------------------------------------------------------------------------


def test_conv_downsamples_224_to_56_with_64_channels():
    torch.manual_seed(0)
    adapter = ConvImageInputAdapter((224, 224, 3), num_frequency_bands=2).eval()
    assert adapter.grid_shape == (56, 56)
    out = adapter(images(1, 224, 224))
    assert out.shape == (1, 56 * 56, 64 + num_fourier_channels(2, 2))
    torch.testing.assert_close(out[0, :, 64:], fourier((56, 56), 2))


@pytest.mark.parametrize(("height", "width"), [(15, 9), (16, 16), (1, 5)])
def test_conv_grid_matches_the_layers_for_odd_sizes(height, width):
    adapter = ConvImageInputAdapter((height, width, 3), 2, num_output_channels=4)
    out = adapter(images(2, height, width))
    expected_grid = (-(-height // 4), -(-width // 4))
    assert adapter.grid_shape == expected_grid
    assert out.shape == (2, expected_grid[0] * expected_grid[1], adapter.num_input_channels)


def test_conv_matches_the_stem_written_out():
    torch.manual_seed(0)
    adapter = ConvImageInputAdapter((12, 12, 3), 2, num_output_channels=4, use_batchnorm=False)
    x = images(2, 12, 12)
    h = rearrange(normalised(x), "b h w c -> b c h w")
    h = torch.nn.functional.conv2d(h, adapter.conv.weight, adapter.conv.bias, stride=2, padding=3)
    h = torch.nn.functional.max_pool2d(h.relu(), 3, stride=2, padding=1)
    torch.testing.assert_close(adapter(x)[..., :4], rearrange(h, "b c h w -> b (h w) c"))


# -- all variants through the classifier -----------------------------------------------


@pytest.mark.parametrize("preprocessing", ["pixels", "conv1x1", "patches", "conv"])
def test_classifier_forward_backward_for_every_preprocessing(preprocessing):
    torch.manual_seed(0)
    extra = {} if preprocessing == "pixels" else {"num_preprocessing_channels": 8}
    model = image_classifier(small_config(preprocessing=preprocessing, **extra)).train()
    logits = model(images(3))
    assert logits.shape == (3, 4)
    logits.sum().backward()
    grads(model)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(images(3)), model(images(3).float() / 255.0))


def test_preprocessing_config_errors():
    with pytest.raises(ValidationError, match="preprocessing"):
        small_config(preprocessing="fft")
    with pytest.raises(ValidationError, match="num_preprocessing_channels=8 does not apply"):
        small_config(num_preprocessing_channels=8)
