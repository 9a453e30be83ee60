"""`python -m dynamo_wizard.cloud.credentials --check` exits 0 with usable credentials, 1 without; no secrets."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.cloud.conftest import FAKE_ACCESS_KEY, FAKE_SECRET_KEY


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dynamo_wizard.cloud.credentials", "--check"], env=env,
                          capture_output=True, text=True, timeout=30)


def test_usable_credentials_exit_zero_and_print_no_secret(aws_env: dict[str, str]) -> None:
    done = _check(dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "account 123456789012" in done.stdout
    assert FAKE_SECRET_KEY not in done.stdout + done.stderr and FAKE_ACCESS_KEY not in done.stdout + done.stderr


def test_no_credentials_exit_one(aws_env: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    done = _check(env)
    assert done.returncode == 1 and "NoCredentialsError" in done.stderr
