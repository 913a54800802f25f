import torch

from pipelines.training.memory import live_tensor_mib, peak_rss_mib


def test_live_tensors_count_each_storage_once() -> None:
    before = live_tensor_mib()
    block = torch.zeros(2**20, dtype=torch.float32)  # 4 MiB, written
    views = [block[:10], block.view(1024, 1024), block[2**19 :]]
    held = live_tensor_mib()
    assert 3.99 <= held - before <= 4.01, (before, held)
    del block, views
    assert live_tensor_mib() <= held - 3.99


def test_only_resident_pages_count() -> None:
    before = live_tensor_mib()
    # 64 MiB, above glibc's largest mmap threshold (32 MiB): fresh pages, reserved, unwritten
    block = torch.empty(64 * 2**20, dtype=torch.uint8)
    untouched = live_tensor_mib()
    assert untouched - before < 1.0, (before, untouched)
    block[: 32 * 2**20].fill_(1)  # half of it written
    assert 31.9 <= live_tensor_mib() - before <= 33.0
    del block


def test_peak_rss_covers_live_tensors() -> None:
    block = torch.ones(8 * 2**20 // 4)  # 8 MiB, written
    assert peak_rss_mib() >= live_tensor_mib() >= 8
    del block
