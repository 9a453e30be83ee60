"""Fixtures of the reliability suite (crash safety has its own, in its module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .world import World, build_world


@pytest.fixture(scope="package")
def canary_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One deployment through every front end with a canary HF token, among resources that are not the
    wizard's (see world.py); built once for test_secrets.py and test_isolation.py, stopped when the package's tests end."""
    with build_world(tmp_path_factory.mktemp("canary-world")) as world:
        yield world
