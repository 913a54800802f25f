"""Pictures (and sounds) logged as MLflow artefacts, rendered with matplotlib's Agg backend.

``curves`` (training curves), ``classification`` (confusion matrices, prediction grids, video
frame strips), ``audio`` (per-class AP, spectrograms, waveforms, WAV files), ``flow`` (the
Middlebury colour coding) and ``reconstruction`` (original beside decoded frames).
"""

from pipelines.figures.classification import confusion_png, frame_strips_png, predictions_png
from pipelines.figures.curves import line_plot_png

__all__ = ["confusion_png", "frame_strips_png", "line_plot_png", "predictions_png"]
