"""The application as ``create_app`` builds it: every router module is mounted.

Tests use the app exactly as main.py assembles it (no test mounts a router itself), so a
router dropped from main.py fails here and in its own tests.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from app import routers


def test_every_router_module_is_mounted(app: Any) -> None:
    # FastAPI keeps an included router as one entry (``original_router``), not its routes.
    mounted = {id(getattr(route, "original_router", route)) for route in app.routes}
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    checked = []
    for info in pkgutil.iter_modules(routers.__path__):
        module = importlib.import_module(f"app.routers.{info.name}")
        router = getattr(module, "router", None)
        if not isinstance(router, APIRouter):
            continue
        assert id(router) in mounted, f"app.routers.{info.name} is not mounted"
        operations = {
            (method, route.path)
            for route in router.routes
            if isinstance(route, APIRoute) and route.include_in_schema
            for method in route.methods
        }
        assert operations, info.name
        assert operations <= documented, operations - documented
        checked.append(info.name)
    assert {"orders", "dispatch_board", "pick_list", "low_stock", "replenishment"} <= set(checked)
