"""``python -m tests.fuzz`` (``make fuzz``): a long schemathesis run, every role, every phase.

On ``TEST_DATABASE_URL`` / ``DATABASE_URL`` if set, else on the embedded server the tests use.
Exits non-zero if any role's run failed; known failures (hooks.KNOWN_SIGNATURES) are listed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.embedded_pg import start as start_embedded
from tests.fuzz.harness import ROLES, Options, fuzz_database, run_schemathesis, seed, serve


@contextmanager
def _server_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    embedded = start_embedded(Path(os.environ.get("STOREOPS_TEST_PGDIR", "/tmp/storeops-test-pg")))
    try:
        yield embedded.uri
    finally:
        embedded.stop()


def main() -> int:
    """Run schemathesis per role against a freshly served, seeded app."""
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz")
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--max-time", type=int, default=120, help="seconds per role")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--st-args", default="", help="more `st run` options, space-separated")
    args = parser.parse_args()
    options = Options(
        max_examples=args.max_examples,
        phases=args.phases,
        seed=args.seed,
        max_time=args.max_time or None,
        extra=args.st_args.split(),
    )
    failed = []
    with (
        tempfile.TemporaryDirectory(prefix="storeops-fuzz-") as tmp,
        _server_url() as server_url,
        fuzz_database(server_url) as database_url,
        serve(database_url, Path(tmp)) as server,
    ):
        seeded = seed(server.base_url)
        for role in args.roles.split(","):
            result = run_schemathesis(server, seeded, role, options)
            print(result.output)
            for known in result.known:
                print(f"KNOWN ({known['signature']}): {known['operation']}: {known['curl']}")
            print(f"== {role}: exit {result.returncode} in {result.seconds:.0f} s", flush=True)
            if result.returncode:
                failed.append(role)
    print("fuzz: failed for " + ", ".join(failed) if failed else "fuzz: all roles passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
