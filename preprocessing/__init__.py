"""Ray Data jobs that decode raw media in real dataset layouts into Parquet shards.

Packages, in the order the data goes through them:

- ``preprocessing.layouts``: a dataset's folder layout (file names, CSVs, split lists; no
  media is read) -> labelled inputs, scan-stage rejects and the label map.
- ``preprocessing.decode``: the decode policies, a file's bytes -> fixed-shape arrays (image,
  audio, video, optical flow), and what they share (resampling, PyAV helpers, truncation
  checks, 16-bit PNG).
- ``preprocessing.engine``: the modality-independent job: shard tasks on Ray Data,
  quarantine, incremental runs and the manifest; ``preprocessing.engine.spec`` is the contract
  a modality plugs into.
- ``preprocessing.modalities``: one plug-in per ``--modality`` (a layout scan, a decode
  policy, a shard schema) and the table from a modality's name to its config and job.
- ``preprocessing.parquet``: the shard format and its writer (fixed-shape tensor columns).
- ``preprocessing.sample_data``: small datasets in the real layouts, written with real
  encoders, for demos and tests.

``preprocessing.config`` holds the pydantic config of every modality. Nothing here runs at
import; Ray, PyAV and torch are imported by the functions that use them.
"""
