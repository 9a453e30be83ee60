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

from .capacity import CapacityScreen
from .families import FamiliesScreen
from .region import RegionScreen
from .review import ReviewScreen
from .serving import ServingScreen
from .welcome import WelcomeScreen

WIZARD_SCREENS: dict[str, Callable[[], Screen[Any]]] = {
    "welcome": WelcomeScreen,
    "region": RegionScreen,
    "families": FamiliesScreen,
    "capacity": CapacityScreen,
    "serving": ServingScreen,
    "review": ReviewScreen,
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
