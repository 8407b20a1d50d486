"""The registry of demo-data parts that `manage.py seed_demo` runs.

`org`, `tags` and `customers` seed first, in that order, from the command itself. The apps above
them (channel codes, keyword rules, WeCom, insights) register their own part from their
`AppConfig.ready()`, so the command never imports upwards:

    from tagportal.demo import register_demo_part

    register_demo_part(channels.demo.seed, order=40)

A part is `seed(*, stdout, **options)` (options: `customers`, `seed`), idempotent: run twice it
adds only what is missing. Parts run in ascending `order`.
"""

from __future__ import annotations

from collections.abc import Callable

DemoPart = Callable[..., None]

_parts: list[tuple[int, DemoPart]] = []


def register_demo_part(part: DemoPart, *, order: int = 50) -> DemoPart:
    if all(p is not part for _o, p in _parts):
        _parts.append((order, part))
    return part


def demo_parts() -> list[DemoPart]:
    return [p for _o, p in sorted(_parts, key=lambda item: item[0])]
