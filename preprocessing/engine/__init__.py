"""The modality-independent preprocessing job: a scan result in, a published manifest out.

- ``run``: the job itself (``run_preprocessing``): planning, Ray Data, quarantine, manifest.
- ``spec``: what a modality plugs in (``ModalitySpec``: decode function, schema, splits) and
  what the job needs of its config (``JobConfig``).
- ``records``: the plain records passed between a scan, the Ray tasks and the manifest.
- ``shard_task``: how inputs are grouped into shards, and the Ray task that writes one.
- ``incremental``: what an output folder already holds (incremental runs, recovery).
- ``manifest``: ``manifest.json``, its reconciliation and its versions.
"""
