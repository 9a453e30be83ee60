"""The wizard's screens, one module per screen of design section 1.

`WIZARD_SCREENS` maps each wizard step to a factory; `tui.app.WizardApp` looks it up by name (tui does
not import screens). Screens built by other parts (provision, cleanup) install themselves through
`install_optional(app)` when their module is present.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from textual.screen import Screen


def _lazy(module: str, name: str) -> Callable[[], Screen[Any]]:
    """A factory that imports the screen's module when the screen is first shown (cold start: only the
    welcome screen loads before the first frame)."""

    def make() -> Screen[Any]:
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)()  # type: ignore[no-any-return]

    make.__name__ = f"make_{name}"
    return make


WIZARD_SCREENS: dict[str, Callable[[], Screen[Any]]] = {
    "welcome": _lazy("welcome", "WelcomeScreen"),
    "region": _lazy("region", "RegionScreen"),
    "families": _lazy("families", "FamiliesScreen"),
    "capacity": _lazy("capacity", "CapacityScreen"),
    "serving": _lazy("serving", "ServingScreen"),
    "review": _lazy("review", "ReviewScreen"),
}

# Screens that live in their own modules and install themselves (`install(app)`) under these names.
OPTIONAL_SCREENS = {"provision": "dynamo_wizard.screens.provision", "cleanup": "dynamo_wizard.screens.cleanup"}


def install_optional(app: Any, names: tuple[str, ...] = ("provision", "cleanup")) -> list[str]:
    """Install the optional screens whose modules exist; returns the names installed."""
    installed: list[str] = []
    for name in names:
        module_name = OPTIONAL_SCREENS[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and module_name.startswith(err.name):
                continue
            raise
        install = getattr(module, "install", None)
        if callable(install):
            install(app)
            installed.append(name)
    return installed
