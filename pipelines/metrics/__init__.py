"""Evaluation metrics, in plain numpy, each defined as its field defines it.

- ``classification``: top-k accuracy, cross-entropy, confusion matrix;
- ``multilabel``: AudioSet's mAP, AUC and d' (Gemmeke et al. 2017, Hershey et al. 2017);
- ``flow``: end-point error, n-pixel accuracy and KITTI 2015's Fl outliers;
- ``reconstruction``: PSNR.

The tests check each against an independent implementation on the same predictions
(scikit-learn, scikit-image, or a per-element computation).
"""
