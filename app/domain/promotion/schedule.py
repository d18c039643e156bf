"""When a promotion is on (DOMAIN.md §5): its window, its weekly schedule in store time,
the concrete windows between two instants, and whether two promotions can ever overlap.

Pure functions: instants in, instants out, the store's zone passed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

# Weekly windows repeat every 7 days of store time: two weeks and a day of them show every
# combination of two schedules (a window crossing midnight reaches into the next day).
_OVERLAP_HORIZON = timedelta(days=15)
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Weekly:
    """Weekdays (ISO, Monday 1 … Sunday 7) and hours in store time.

    ``end`` at or before ``start`` crosses midnight: the window opened on a listed weekday
    closes the next day (``end == start``: a whole day).
    """

    weekdays: frozenset[int]
    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        """Whether a window closes on the day after it opens."""
        return self.end <= self.start


@dataclass(frozen=True, slots=True)
class Timing:
    """The instants a promotion can apply at: ``[starts_at, ends_at)`` and the schedule."""

    starts_at: datetime
    ends_at: datetime
    schedule: Weekly | None
    tz: tzinfo


def _on_schedule(schedule: Weekly, local: datetime) -> bool:
    t = local.time().replace(tzinfo=None)
    day = local.isoweekday()
    if not schedule.crosses_midnight:
        return day in schedule.weekdays and schedule.start <= t < schedule.end
    yesterday = 7 if day == 1 else day - 1
    return (day in schedule.weekdays and t >= schedule.start) or (
        yesterday in schedule.weekdays and t < schedule.end
    )


def is_on(timing: Timing, at: datetime) -> bool:
    """Whether the promotion applies at instant ``at``."""
    if not timing.starts_at <= at < timing.ends_at:
        return False
    if timing.schedule is None:
        return True
    return _on_schedule(timing.schedule, at.astimezone(timing.tz))


def _local(day: date, at: time, tz: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _weekly_windows(
    schedule: Weekly, tz: tzinfo, frm: datetime, to: datetime
) -> Iterator[tuple[datetime, datetime]]:
    day = frm.astimezone(tz).date() - _DAY
    last = to.astimezone(tz).date()
    while day <= last:
        if day.isoweekday() in schedule.weekdays:
            start = _local(day, schedule.start, tz)
            end_day = day + _DAY if schedule.crosses_midnight else day
            yield start, _local(end_day, schedule.end, tz)
        day += _DAY


def windows(timing: Timing, frm: datetime, to: datetime) -> list[tuple[datetime, datetime]]:
    """The promotion's concrete windows ``[start, end)`` (UTC, clipped to its own window)
    that meet ``[frm, to)``, in order."""
    lo, hi = max(frm, timing.starts_at), min(to, timing.ends_at)
    if lo >= hi:
        return []
    if timing.schedule is None:
        return [(timing.starts_at, timing.ends_at)]
    out = []
    for start, end in _weekly_windows(timing.schedule, timing.tz, lo, hi):
        start, end = max(start, timing.starts_at), min(end, timing.ends_at)
        if start < end and start < hi and end > lo:
            out.append((start, end))
    return out


def overlaps(a: Timing, b: Timing) -> bool:
    """Whether some instant has both promotions on (windows and schedules, exactly)."""
    lo, hi = max(a.starts_at, b.starts_at), min(a.ends_at, b.ends_at)
    if lo >= hi:
        return False
    if a.schedule is None and b.schedule is None:
        return True
    hi = min(hi, lo + _OVERLAP_HORIZON)
    wb = windows(b, lo, hi)
    for sa, ea in windows(a, lo, hi):
        for sb, eb in wb:
            if max(sa, sb, lo) < min(ea, eb, hi):
                return True
    return False


@dataclass(frozen=True, slots=True)
class Boundary:
    """A window opening (``started``) or closing (``ended``); ``window_start`` names it."""

    at: datetime
    kind: str
    window_start: datetime
    window_end: datetime


def boundaries(timing: Timing, after: datetime, upto: datetime) -> list[Boundary]:
    """Window openings and closings in ``(after, upto]``, in time order."""
    out = []
    for start, end in windows(timing, after - _DAY, upto + _DAY):
        if after < start <= upto:
            out.append(Boundary(start, "started", start, end))
        if after < end <= upto:
            out.append(Boundary(end, "ended", start, end))
    out.sort(key=lambda b: (b.at, b.kind == "started"))
    return out


def next_boundary(timing: Timing, after: datetime) -> datetime | None:
    """The first opening or closing after ``after``; None when there is none left."""
    if after >= timing.ends_at:
        return None
    frm = max(after, timing.starts_at - _DAY)
    to = min(timing.ends_at, frm + timedelta(days=9))
    for b in boundaries(timing, after, to):
        return b.at
    if to < timing.ends_at:
        # No window in nine days: a schedule whose clock times never occur (DST gaps).
        return to
    return None
