"""Event handlers, one module per concern; `WecomConfig.ready()` imports every module here, and
each registers with `wecom.events.event_handler`."""

import importlib
import pkgutil


def autodiscover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
