"""Readers of the datasets' real on-disk layouts: each yields labelled files and rejects."""
