"""Single-label classification: top-k accuracy, mean cross-entropy, confusion matrix."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """(N, K) logits -> (N, K) log-probabilities, computed stably in float64."""
    x = logits.astype(np.float64)
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, K) logits, (N,) labels -> (N,) negative log-likelihood of the true class."""
    return -log_softmax(logits)[np.arange(len(labels)), labels]


def top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """(N, K) logits -> (N, min(k, K)) class indices, best first (ties: lower index first)."""
    k = min(k, logits.shape[1])
    order = np.argsort(-logits, axis=1, kind="stable")
    return order[:, :k]


def top_k_hits(top: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, k) predicted classes, (N,) labels -> (N,) True where the label is among them."""
    return (top == labels[:, None]).any(axis=1)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts, rows the true class, columns the predicted one."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), preds.astype(np.int64)), 1)
    return matrix
