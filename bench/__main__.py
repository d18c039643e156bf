"""``python -m bench [scenario ...]``: run benchmark scenarios on a fresh local database."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from bench import (
    dispatch_board,
    intake,
    marketplace,
    promotions,
    reports,
    reservations,
    tickets,
    webhooks,
)
from bench.common import (
    Options,
    Report,
    format_table,
    fresh_database,
    server,
    server_facts,
    write_results,
)

Scenario = Callable[[str, Options], Awaitable[Report]]
SCENARIOS: dict[str, Scenario] = {
    reservations.NAME: reservations.run,
    dispatch_board.NAME: dispatch_board.run,
    intake.SINGLE: intake.run_single,
    intake.BULK: intake.run_bulk,
    intake.HOT: intake.run_hot,
    tickets.NAME: tickets.run,
    promotions.NAME: promotions.run,
    reports.NAME: reports.run,
    reports.INTAKE: reports.run_intake,
    marketplace.NAME: marketplace.run,
    webhooks.NAME: webhooks.run,
}
# Names that stand for several scenarios.
GROUPS: dict[str, tuple[str, ...]] = {intake.NAME: intake.SCENARIOS}
# uvicorn runs the app on uvloop when it is installed; measure on the same loop.
DEFAULT_LOOP = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="scenario",
        help=f"any of {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument("--clients", type=int, default=64, help="concurrent workers (default 64)")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measuring window per row (default 10)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure rows in this many interleaved slices of seconds/rounds (default 1)",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default=DEFAULT_LOOP,
        help=f"event loop (default {DEFAULT_LOOP}, as uvicorn picks)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL"),
        help="local PostgreSQL server (default: BENCH_DATABASE_URL, DATABASE_URL, "
        "else an embedded server under .storeops/bench-pg)",
    )
    return parser


async def _run(
    server_url: str, embedded: bool, names: Sequence[str], options: Options, loop: str
) -> None:
    facts = {"embedded": embedded, **await server_facts(server_url)}
    print(
        f"server: PostgreSQL {facts['server_version']}"
        f" ({'embedded' if embedded else 'given URL'}), clients={options.clients},"
        f" window={options.seconds:g}s in {options.rounds} round(s), each after"
        f" {options.warmup:g}s warm-up, loop={loop}",
        flush=True,
    )
    for name in names:
        started_at = datetime.now(UTC).isoformat()
        async with fresh_database(server_url) as url:
            report = await SCENARIOS[name](url, options)
        print(f"\n{format_table(report)}\n{report.summary}", flush=True)
        path = write_results(
            report, options, {"started_at": started_at, "loop": loop, "server": facts}
        )
        print(f"results: {path}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, start or join the server, run the scenarios."""
    args = _parser().parse_args(argv)
    args.scenarios = [n for a in args.scenarios for n in GROUPS.get(a, (a,))]
    unknown = [n for n in args.scenarios if n not in SCENARIOS]
    if unknown:
        _parser().error(f"unknown scenario(s): {', '.join(unknown)}")
    if args.clients < 1 or args.seconds <= 0 or args.rounds < 1:
        _parser().error("--clients, --seconds and --rounds must be positive")
    logging.basicConfig(level=logging.WARNING)
    options = Options(clients=args.clients, seconds=args.seconds, rounds=args.rounds)
    names = args.scenarios or list(SCENARIOS)
    with (
        server(args.database_url) as (server_url, embedded),
        asyncio.Runner(loop_factory=_loop_factory(args.loop)) as runner,
    ):
        runner.run(_run(server_url, embedded, names, options, args.loop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
