"""The collector pause around a marketplace batch: counted, and always resumed."""

from __future__ import annotations

import gc

import pytest

from app.domain.marketplace.ingest import _collector_paused


def test_overlapping_batches_resume_the_collector_after_the_last() -> None:
    assert gc.isenabled()
    first, second = _collector_paused(), _collector_paused()
    first.__enter__()
    second.__enter__()
    assert not gc.isenabled()
    first.__exit__(None, None, None)  # the first batch ends while the second still runs
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def _fail_paused() -> None:
    with _collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")


def test_a_failing_batch_resumes_the_collector() -> None:
    with pytest.raises(RuntimeError):
        _fail_paused()
    assert gc.isenabled()


def test_a_collector_switched_off_elsewhere_stays_off() -> None:
    gc.disable()
    try:
        with _collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
