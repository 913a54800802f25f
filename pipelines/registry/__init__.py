"""The MLflow Model Registry: versions, the challenger and the champion.

``versions`` registers a training run's model (alias ``challenger``, tagged with the run,
data, config and code it came from); ``promotion`` scores challenger and champion on the
same split in one evaluation and moves ``champion`` only on a win by the margin, under a
registry-wide ``lock``, recording each move in the champion ``history`` (MLflow keeps none);
``errors`` turns a registry that is down or refuses into one line.
"""
