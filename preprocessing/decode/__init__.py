"""Decode policies: one file's bytes -> the fixed-shape arrays of a row, or a ``DecodeError``.

Shared by the Ray Data jobs, the tests and anyone re-deriving a row from its source file.

- ``image``: JPEG/PNG -> (S, S, 3) uint8 (resize + center crop); also the frame policy.
- ``audio``: WAV/FLAC/MP3 -> a mono float32 window at a fixed rate.
- ``video``: clips -> (T, S, S, 3) uint8 frames by presentation time (and Kinetics audio).
- ``flow``: frame pairs + ``.flo`` / KITTI ground truth -> frames, flow and valid mask.
- ``av_helpers``: PyAV helpers audio and video share (error text, audio frames to float).
- ``resample``: band-limited sample-rate conversion (scipy's polyphase filter).
- ``truncation``: truncation read from a container's own structure (MP3, Matroska/WebM).
- ``png16``: PNG with its 16-bit samples kept (KITTI flow), decoded by PyAV.
"""
