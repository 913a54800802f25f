"""Every metric equals an independent computation on the same predictions.

scikit-learn for AP, AUC, top-k and the confusion matrix, scikit-image for PSNR, SciPy for
d', and a per-pixel loop for the flow metrics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from skimage.metrics import peak_signal_noise_ratio
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    log_loss,
    roc_auc_score,
    top_k_accuracy_score,
)

from pipelines.metrics import classification, flow, multilabel, reconstruction


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_top_k_cross_entropy_and_confusion_match_scikit_learn(rng):
    logits = rng.normal(size=(200, 7))
    labels = rng.integers(0, 7, 200)
    for k in (1, 5):
        ours = classification.top_k_hits(classification.top_k(logits, k), labels).mean()
        assert ours == pytest.approx(top_k_accuracy_score(labels, logits, k=k, labels=range(7)))
    probs = np.exp(classification.log_softmax(logits))
    assert classification.cross_entropy(logits, labels).mean() == pytest.approx(
        log_loss(labels, probs, labels=range(7))
    )
    preds = logits.argmax(1)
    np.testing.assert_array_equal(
        classification.confusion_matrix(labels, preds, 7),
        confusion_matrix(labels, preds, labels=range(7)),
    )


@pytest.mark.parametrize("ties", [False, True])
def test_audioset_map_auc_dprime_match_scikit_learn(rng, ties):
    n, k = 300, 12
    targets = (rng.random((n, k)) < 0.15).astype(int)
    targets[:, 3] = 0  # a class without a positive is left out of mAP
    targets[:, 5] = 1  # a class without a negative is left out of AUC
    scores = targets * rng.normal(0.8, 1.0, (n, k)) + rng.normal(0, 1.0, (n, k))
    if ties:
        scores = np.round(scores, 1)  # many equal scores
    ours = multilabel.audioset_metrics(targets, scores)
    ap = [average_precision_score(targets[:, c], scores[:, c]) for c in range(k) if c != 3]
    auc = [roc_auc_score(targets[:, c], scores[:, c]) for c in range(k) if c not in (3, 5)]
    assert ours["mAP"] == pytest.approx(np.mean(ap), rel=1e-12)
    assert ours["auc"] == pytest.approx(np.mean(auc), rel=1e-12)
    assert ours["dprime"] == pytest.approx(math.sqrt(2) * norm.ppf(np.mean(auc)), rel=1e-12)
    assert ours["classes_scored"] == k - 1
    per_class = multilabel.per_class_ap(targets, scores)
    assert math.isnan(per_class[3])
    assert per_class[0] == pytest.approx(ap[0], rel=1e-12)


def test_audioset_metrics_refuse_what_is_undefined():
    with pytest.raises(ValueError, match="no class has a positive clip"):
        multilabel.audioset_metrics(np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"must both be \(N, num_classes\)"):
        multilabel.audioset_metrics(np.zeros((4, 3)), np.zeros((4, 2)))


def test_flow_metrics_match_a_per_pixel_computation(rng):
    target = rng.normal(0, 6, (3, 9, 11, 2))
    pred = target + rng.normal(0, 2.5, target.shape)
    valid = rng.random((3, 9, 11)) < 0.7
    sums = sum(flow.flow_sums(pred[i], target[i], valid[i]) for i in range(3))
    ours = flow.flow_metrics(sums)
    errors, outliers = [], 0
    for b, y, x in zip(*np.nonzero(valid), strict=True):
        du, dv = pred[b, y, x] - target[b, y, x]
        err = math.hypot(du, dv)
        errors.append(err)
        gt = math.hypot(*target[b, y, x])
        outliers += err > 3 and err > 0.05 * gt
    errors_arr = np.array(errors)
    assert ours["epe"] == pytest.approx(errors_arr.mean(), rel=1e-12)
    for n in (1, 3, 5):
        assert ours[f"{n}px"] == pytest.approx((errors_arr < n).mean(), rel=1e-12)
    assert ours["fl_all"] == pytest.approx(outliers / len(errors), rel=1e-12)
    with pytest.raises(ValueError, match="no valid ground-truth pixel"):
        flow.flow_metrics(flow.flow_sums(pred[0], target[0], np.zeros((9, 11), bool)))


def test_psnr_matches_scikit_image(rng):
    frames = rng.random((4, 3, 8, 8, 3))
    noisy = np.clip(frames + rng.normal(0, 0.05, frames.shape), 0, 1)
    ours = reconstruction.psnr(noisy, frames, reconstruction.PIXEL_RANGE)
    for i in range(4):
        assert ours[i] == pytest.approx(
            peak_signal_noise_ratio(frames[i], noisy[i], data_range=1.0), rel=1e-12
        )
    audio = rng.uniform(-1, 1, (2, 300))
    heard = audio + rng.normal(0, 0.01, audio.shape)
    ours = reconstruction.psnr(heard, audio, reconstruction.AUDIO_RANGE)
    assert ours[1] == pytest.approx(
        peak_signal_noise_ratio(audio[1], heard[1], data_range=2.0), rel=1e-12
    )
    assert reconstruction.psnr(audio, audio, 2.0)[0] == math.inf
