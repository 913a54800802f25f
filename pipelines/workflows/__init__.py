"""Workflows: preprocess, train, evaluate, register and promote as one scheduled unit.

``spec`` reads a workflow file, ``keys`` says when a step is already done, ``state`` keeps
the runs and their steps in MLflow, ``steps`` says what each step does, and ``runner`` runs
them in order, in-process or as Ray jobs. ``scheduled.yaml`` is the shipped nightly one.
"""
