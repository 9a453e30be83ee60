"""Fixtures of the wizard's Pilot tests (see tests/tui/wizard_backends.py)."""

from ..wizard_backends import sandbox_discovery, wizard_sandbox  # noqa: F401
