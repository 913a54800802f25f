"""Ray jobs: any ``perceiver-pipeline`` command submitted to a Ray cluster's job API.

``auth`` finds the Ray token and turns the job API's refusals into one-line errors,
``runtime`` describes what a job carries (the project's code, MLflow's settings), ``client``
submits (idempotently, by submission id), follows, lists and stops jobs.
"""
