"""Training, evaluation, tracking and registry around the ``perceiver`` model library."""
