"""The pipeline config's shared sections (``sections``) and its loader (``loader``).

A pipeline config is one task's config; the union of them, ``load_config`` and the task
objects are in ``pipelines.tasks``.
"""
