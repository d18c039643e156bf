"""docs/ stays true to the code: the role table, the event types, the error codes, the links
(issue 8 item 9). Regenerate with ``.venv/bin/python -m app.docsgen``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI

from app import docsgen
from app.auth import Principal, Role, Staff, require
from app.main import DESCRIPTION, app

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = ".venv/bin/python -m app.docsgen"


def _roles(path: str, method: str, application: FastAPI = app) -> frozenset[Role] | None:
    found = [
        e.roles for e in docsgen.endpoints(application) if e.path == path and e.method == method
    ]
    assert len(found) == 1, (path, method, found)
    return found[0]


def test_committed_role_table_is_what_the_code_generates() -> None:
    committed = docsgen.ROLES_MD.read_text(encoding="utf-8")
    assert committed == docsgen.render_roles(app), (
        f"docs/roles.md differs from the routes' require(...) roles: run `{REGENERATE}` "
        "and commit docs/roles.md"
    )


def test_role_table_reads_the_route_dependencies() -> None:
    assert _roles("/v1/stores", "POST") == {Role.ADMIN}
    assert _roles("/v1/orders/ship-bulk", "POST") == set(Role)
    assert _roles("/v1/replenishment", "GET") == {Role.ADMIN, Role.OPERATOR, Role.INTEGRATION}
    assert _roles("/healthz", "GET") is None
    assert _roles("/openapi.json", "GET") is None
    # Every /v1 route asks for a key: a route that forgot its require() would show here.
    for e in docsgen.endpoints(app):
        if e.path.startswith("/v1/"):
            assert e.roles, (e.method, e.path)


def _nested(principal: Staff) -> Principal:
    return principal


_demo = FastAPI()


@_demo.get("/nested")
async def _read(_: Annotated[Principal, Depends(_nested)]) -> None:
    """Nested."""


@_demo.post("/both", dependencies=[Depends(require(Role.ADMIN, Role.WAREHOUSE))])
async def _write(_: Staff) -> None:
    """Both."""


@_demo.get("/open")
async def _open() -> None:
    """Open."""


def test_nested_and_combined_requirements() -> None:
    """Roles come from the dependency tree, however deep; two requirements intersect."""
    demo = _demo
    assert _roles("/nested", "GET", demo) == {Role.ADMIN, Role.OPERATOR}
    assert _roles("/both", "POST", demo) == {Role.ADMIN}
    assert _roles("/open", "GET", demo) is None
    table = docsgen.render_roles(demo)
    assert "| POST | `/both` | ✓ |  |  |  | Both. |" in table
    assert "| GET | `/open` | — | — | — | — | **No key.** Open. |" in table


def test_every_event_type_is_documented_with_its_payload() -> None:
    text = docsgen.EVENTS_MD.read_text(encoding="utf-8")
    problems = docsgen.event_problems(text)
    assert not problems, f"docs/events.md: {problems} (check with `{REGENERATE} --check`)"


def test_event_check_notices_a_missing_or_wrong_example() -> None:
    text = docsgen.EVENTS_MD.read_text(encoding="utf-8")
    without = re.sub(r"### `order\.paid`.*?(?=^### )", "", text, flags=re.S | re.M)
    assert any("order.paid" in p for p in docsgen.event_problems(without))
    wrong = text.replace('"type": "order.shipped"', '"type": "order.sent"', 1)
    assert any("order.shipped" in p for p in docsgen.event_problems(wrong))


def test_every_error_code_is_documented() -> None:
    codes = docsgen.error_codes()
    # The collector finds codes of every form, not an empty set that passes trivially.
    assert {
        "duplicate_sku",  # Conflict("duplicate_sku", ...)
        "order_not_found",  # not_found("order", ...)
        "invalid_shipped_at",  # passed as the `code` argument of a helper
        "payload_too_large",  # CODE = "..." (app.limits)
        "method_not_allowed",  # _HTTP_CODES
        "database_unavailable",  # problem_body(503, "...") and Unavailable(...)
        "forbidden_role",
    } <= codes
    documented = docsgen.documented_codes(docsgen.ERRORS_MD.read_text(encoding="utf-8"))
    missing = sorted(codes - documented)
    assert not missing, f"error codes not in docs/errors.md: {missing}"


def test_check_command_passes_on_the_committed_docs(capsys: object) -> None:
    assert docsgen.main(["--check"]) == 0


def test_docs_are_linked_from_the_readme_and_the_openapi_description() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/README.md)" in readme
    assert "../shared/" not in readme  # a clone alone is enough
    assert "docs/README.md" in DESCRIPTION
    assert "docs/README.md" in app.openapi()["info"]["description"]


def test_links_between_docs_resolve() -> None:
    for page in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
