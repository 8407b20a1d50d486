"""The simulator's route registry: WeCom API paths (under /cgi-bin/) served from memory.

Routes live in `wecom/simulator/routes_<concern>.py` modules (each imported when a simulator
starts) and register themselves:

    from wecom.simulator.registry import SimError, route

    @route("POST", "externalcontact/mark_tag")
    def mark_tag(sim, req):                  # sim: WeComSimulator, req: SimRequest
        userid = req.require("userid")       # missing -> WeCom's errcode for a missing parameter
        ...
        return {}                            # errcode 0 / errmsg "ok" are added

Raise `SimError(errcode, errmsg)` for WeCom's errors. Handlers run under `sim.state.lock`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RouteHandler = Callable[..., dict]

_routes: dict[tuple[str, str], RouteHandler] = {}

# WeCom's errcodes the simulator answers with (global error codes page).
INVALID_PARAMETER = 40058  # 不合法的参数
MISSING_PARAMETER = 41000  # generic stand-in for WeCom's per-field 41xxx "缺少…参数" codes


class SimError(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass
class SimRequest:
    method: str
    path: str
    params: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)

    def value(self, name: str, default: Any = None) -> Any:
        if self.method == "GET":
            return self.params.get(name, default)
        return self.body.get(name, default)

    def require(self, name: str, errcode: int = MISSING_PARAMETER) -> Any:
        value = self.value(name)
        if value is None or value == "" or value == []:
            raise SimError(errcode, f"missing {name}")
        return value


def route(method: str, path: str) -> Callable[[RouteHandler], RouteHandler]:
    """Serve `method` `/cgi-bin/<path>` with the decorated handler(sim, req) -> dict."""

    def register(handler: RouteHandler) -> RouteHandler:
        _routes[(method.upper(), path.strip("/"))] = handler
        return handler

    return register


def lookup(method: str, path: str) -> RouteHandler | None:
    return _routes.get((method.upper(), path.strip("/")))


def known_paths() -> list[str]:
    return sorted({f"{m} {p}" for m, p in _routes})


def autodiscover() -> None:
    """Import every `routes_*` module of this package (core's and the other engineers')."""
    from wecom import simulator

    for module in pkgutil.iter_modules(simulator.__path__):
        if module.name.startswith("routes_"):
            importlib.import_module(f"{simulator.__name__}.{module.name}")
