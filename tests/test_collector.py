"""The collector pause around a batch request: counted, and always resumed."""

from __future__ import annotations

import gc

import pytest

from app import collector
from app.collector import paused as _collector_paused


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


def test_batches_overlapping_without_a_gap_still_collect(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    collected: list[int] = []
    monkeypatch.setattr(collector, "_clock", lambda: now[0])
    monkeypatch.setattr(gc, "collect", lambda generation=2: collected.append(generation) or 0)
    running = [_collector_paused(), _collector_paused()]
    for batch in running:
        batch.__enter__()
    for _ in range(7):  # 7 s in all, a batch always running: a collection at 3 s and 6 s
        now[0] += 1.0
        running.pop(0).__exit__(None, None, None)
        running.append(_collector_paused())
        running[-1].__enter__()
        assert not gc.isenabled()
    assert collected == [2, 2]  # no more often than MAX_PAUSE_SECONDS (2 s)
    for batch in running:
        batch.__exit__(None, None, None)
    assert gc.isenabled()


def test_every_batch_route_pauses_the_collector() -> None:
    import importlib
    import pkgutil

    from fastapi.routing import APIRoute

    from app import routers
    from app.routing import _BATCH

    marked = set()
    for info in pkgutil.iter_modules(routers.__path__):
        router = getattr(importlib.import_module(f"app.routers.{info.name}"), "router", None)
        for r in getattr(router, "routes", []):
            if isinstance(r, APIRoute) and getattr(r.endpoint, _BATCH, False):
                marked.add((next(iter(r.methods)), r.path))
    assert marked == {
        ("POST", "/v1/orders/bulk"),
        ("POST", "/v1/orders/ship-bulk"),
        ("PUT", "/v1/orders/by-external"),
        ("POST", "/v1/marketplace/{platform}/orders"),
        ("PUT", "/v1/stock-levels"),
    }


def test_freeze_after_startup_keeps_what_lives_out_of_collections() -> None:
    before = gc.get_freeze_count()
    kept = [object() for _ in range(10)]
    collector.freeze_after_startup()
    try:
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()
