import io

import numpy as np
from PIL import Image

from pipelines.figures import confusion_png, line_plot_png, predictions_png


def size_of(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(png)).size


def test_every_figure_renders_a_png():
    assert size_of(line_plot_png([1, 2, 3], {"loss": [1.0, 0.5, 0.2]}, "step", "loss")) == (
        600,
        350,
    )
    confusion = np.array([[3, 1], [0, 4]])
    assert min(size_of(confusion_png(confusion, ["a", "b"], "val"))) > 100
    images = np.zeros((3, 16, 16, 3), dtype=np.uint8)
    grid = predictions_png(images, np.array([0, 1, 1]), np.array([0, 0, 1]), ["a", "b"])
    assert min(size_of(grid)) > 100


def test_task_pictures_render():
    from pipelines.figures import frame_strips_png
    from pipelines.figures.audio import class_ap_png, spectrograms_png, wav_bytes, waveforms_png
    from pipelines.figures.flow import flow_panels_png
    from pipelines.figures.reconstruction import frames_side_by_side_png

    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (2, 5, 8, 8, 3), dtype=np.uint8)
    assert (
        min(size_of(frame_strips_png(clips, np.array([0, 1]), np.array([1, 1]), ["a", "b"]))) > 50
    )
    ap = np.array([0.9, float("nan"), 0.2, 0.6])
    assert min(size_of(class_ap_png(ap, ["w", "x", "y", "z"], count=1))) > 50
    audio = rng.uniform(-1, 1, (2, 4800)).astype(np.float32)
    assert min(size_of(spectrograms_png(audio, 48000, [["x"], []], [["x", "y"], []]))) > 50
    assert min(size_of(waveforms_png(audio, audio * 0.5, 48000, "audio"))) > 50
    wav = wav_bytes(audio[0], 48000)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    frames = rng.integers(0, 256, (1, 2, 6, 8, 3), dtype=np.uint8)
    flow = rng.normal(0, 2, (1, 6, 8, 2))
    valid = np.ones((1, 6, 8), bool)
    assert min(size_of(flow_panels_png(frames, flow, flow * 0.9, valid, [0.3]))) > 50
    video = clips.astype(np.float32) / 255
    assert min(size_of(frames_side_by_side_png(clips, video, [30.0, 28.0]))) > 50


def test_middlebury_colour_coding():
    from pipelines.figures.flow import color_wheel, flow_to_color

    wheel = color_wheel()
    assert wheel.shape == (55, 3)
    np.testing.assert_array_equal(wheel[0], [255, 0, 0])  # the wheel starts at red
    np.testing.assert_array_equal(wheel[15], [255, 255, 0])  # 15 steps later: yellow
    np.testing.assert_array_equal(wheel[21], [0, 255, 0])  # then 6 to green
    still = flow_to_color(np.zeros((2, 2, 2)))
    assert (still == 255).all()  # no motion is white
    # Motion of the largest length is a saturated wheel colour; opposite directions differ.
    field = np.array([[[1.0, 0.0], [-1.0, 0.0]]])  # right, left
    colours = flow_to_color(field).astype(int)
    assert colours.min() == 0 and colours.max() == 255
    assert np.abs(colours[0, 0] - colours[0, 1]).sum() > 200
    # Colours scale with max_radius: half the radius, halfway to white.
    half = flow_to_color(field * 0.5, max_radius=1.0).astype(int)
    assert (half[0, 0] > colours[0, 0]).any() and (half <= 255).all()
