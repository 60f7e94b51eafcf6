"""`flush_denormal`: subnormal floats become zero inside the block, the previous setting comes back after."""

from __future__ import annotations

import pytest
import torch

from mgtune.training.device import flush_denormal

SUBNORMAL = 1e-39  # below float32's smallest normal number, ~1.18e-38


def _flushes() -> bool:
    """Whether this thread flushes now: a product that is subnormal comes out as zero."""
    return bool((torch.tensor([SUBNORMAL]) * 0.5).item() == 0.0)


@pytest.fixture(autouse=True)
def _supported() -> None:
    if not torch.set_flush_denormal(False):  # also the state every test starts from
        pytest.skip("this CPU cannot flush subnormal floats")


def test_flushes_inside_and_restores_off_after() -> None:
    assert not _flushes()
    with flush_denormal():
        assert _flushes()
    assert not _flushes()


def test_nested_blocks_restore_the_outer_setting() -> None:
    with flush_denormal():
        with flush_denormal():
            assert _flushes()
        assert _flushes()  # the inner block must not turn off what the outer one turned on
    assert not _flushes()


def test_restored_after_an_exception() -> None:
    with pytest.raises(RuntimeError), flush_denormal():
        raise RuntimeError("boom")
    assert not _flushes()


def test_a_setting_made_elsewhere_is_kept() -> None:
    torch.set_flush_denormal(True)  # by someone else, before the block
    try:
        with flush_denormal():
            assert _flushes()
        assert _flushes()
    finally:
        torch.set_flush_denormal(False)
