"""Small datasets in real on-disk layouts, written with real encoders, for demos and tests.

Each writer also lists which files must become rows and which are broken on purpose (and
must be quarantined, with their reason), so a test can check that every input is accounted
for.

- ``image``: the ImageNet folder layout (JPEG/PNG).
- ``audio``: the AudioSet layout (segment CSVs; WAV, FLAC, MP3).
- ``video``: class folders of clips (split folders, plain class folders, UCF-101 split
  lists) and the Kinetics-700-2020 layout (MP4 with AAC audio).
- ``flow``: optical flow in the AutoFlow, FlyingChairs, Sintel and KITTI 2015 layouts.
"""
