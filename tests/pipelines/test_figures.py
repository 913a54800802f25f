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
