import pytest
import torch

from perceiver.adapters.flow import extract_flow_patches


def test_patch_layout_is_kernel_row_column_then_channel():
    torch.manual_seed(0)
    frames = torch.rand(1, 2, 5, 6, 3)  # (B, T, H, W, C)
    patches = extract_flow_patches(frames)
    assert patches.shape == (1, 2, 27, 5, 6)
    y, x = 2, 3  # an interior pixel: its patch is the 3x3 block around it
    for t in range(2):
        for kh in range(3):
            for kw in range(3):
                for c in range(3):
                    got = patches[0, t, (kh * 3 + kw) * 3 + c, y, x]
                    assert got == frames[0, t, y + kh - 1, x + kw - 1, c]
    # the centre value of every patch is the pixel itself
    torch.testing.assert_close(patches[0, :, 12:15].permute(0, 2, 3, 1), frames[0])


def test_borders_are_zero_padded():
    frames = torch.ones(1, 2, 4, 4, 3)
    patches = extract_flow_patches(frames)
    assert patches[0, 0, 0:3, 0, 0].eq(0).all()  # top-left neighbour of the corner pixel
    assert patches[0, 0, 12:15, 0, 0].eq(1).all()


def test_bad_shapes_are_value_errors():
    with pytest.raises(ValueError, match=r"frames must be \(B, T, H, W, C\)"):
        extract_flow_patches(torch.zeros(2, 4, 4, 3))
    with pytest.raises(ValueError, match="kernel must be a positive odd number, got 2"):
        extract_flow_patches(torch.zeros(1, 2, 4, 4, 3), kernel=2)
