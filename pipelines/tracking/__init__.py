"""MLflow: the pipeline's runs (``runs``), rank 0's logging inside training (``rank_zero``)
and the Model Registry (``registry``)."""
