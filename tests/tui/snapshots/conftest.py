"""Fixtures of the wizard's Pilot tests (see tests/tui/wizard_backends.py)."""

from ..wizard_backends import wizard_aws, wizard_aws_server, wizard_tools  # noqa: F401
