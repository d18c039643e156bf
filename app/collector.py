"""Python's cyclic garbage collector, for a service whose requests carry big batches.

Two measures, both measured on 1,000-order batches (bench/README.md, scenario
``marketplace``):

- :func:`freeze_after_startup`: everything alive once the service is up (modules, the
  app, its routes and models, the pool) moves to the collector's permanent generation, so
  a full collection walks only what requests made since. Before, a full collection walked
  the whole ~200k-object heap (100–200 ms) every third or fourth batch: bulk intake went
  from 121 to 72 ms of CPU per batch with it.
- :func:`paused`: the collector paused over a whole batch request (parse, checks, database
  round trips). A batch allocates tens of thousands of containers that all live until it
  is done: every collection meanwhile walks them in vain and promotes them. Paused, the
  batch is freed by reference counting (the batch paths make no reference cycles), and the
  collector runs again after it, catching up on any cycles other requests made meanwhile.
  Counted: overlapping batches on the event loop resume it once, after the last of them;
  while they overlap for longer than ``MAX_PAUSE_SECONDS``, a batch that ends collects
  once, so other requests' cycles never pile up for long.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator

# While batches overlap without a gap the collector stays paused: a full collection at
# most this often keeps other requests' cycles from piling up meanwhile.
MAX_PAUSE_SECONDS = 2.0
_clock = time.monotonic


class _Pauses:
    """Batches running; whether the collector ran before the first; since when."""

    count = 0
    resume = False
    since = 0.0


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The cyclic collector paused while a batch runs, awaits included (see the module
    docstring); a collector switched off elsewhere stays off."""
    if _Pauses.count == 0:
        _Pauses.resume = gc.isenabled()
        _Pauses.since = _clock()
        gc.disable()
    _Pauses.count += 1
    try:
        yield
    finally:
        _Pauses.count -= 1
        if _Pauses.resume:
            if _Pauses.count == 0:
                gc.enable()
            elif _clock() - _Pauses.since > MAX_PAUSE_SECONDS:
                gc.collect()
                _Pauses.since = _clock()


def freeze_after_startup() -> None:
    """Collect once, then keep everything alive now out of later collections."""
    gc.collect()
    gc.freeze()
