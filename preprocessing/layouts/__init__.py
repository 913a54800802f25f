"""Readers of the datasets' real on-disk layouts: each yields labelled files and rejects.

A scan reads names, CSVs and split lists, never media; every file it walks is either a
labelled input or a scan-stage reject with its reason.

- ``imagenet``: ``<root>/{train,val}/<class>/<file>`` (images; video clips in split folders).
- ``class_folders``: ``<root>/<class>/<clip>`` without split folders (UCF-101, HMDB-51):
  official split lists when present, else a stable hash of the path picks the split.
- ``audioset``: AudioSet's segment CSVs and audio files named by YouTube ID.
- ``kinetics``: Kinetics-700-2020's CSVs and ``<split>/<label>/<clip>`` folders.
- ``flow``: AutoFlow, FlyingChairs, MPI-Sintel and KITTI 2015 optical flow.
"""
