import torch

from pipelines.training.memory import live_tensor_mib, peak_rss_mib


def test_live_tensors_count_each_storage_once() -> None:
    before = live_tensor_mib()
    block = torch.zeros(2**20, dtype=torch.float32)  # 4 MiB
    views = [block[:10], block.view(1024, 1024), block[2**19 :]]
    held = live_tensor_mib()
    assert 3.99 <= held - before <= 4.01, (before, held)
    del block, views
    assert live_tensor_mib() <= held - 3.99


def test_peak_rss_covers_live_tensors() -> None:
    block = torch.ones(8 * 2**20 // 4)  # 8 MiB, touched
    assert peak_rss_mib() >= live_tensor_mib() >= 8
    del block
