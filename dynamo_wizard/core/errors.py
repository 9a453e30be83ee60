"""Errors that reach users: each says what is wrong and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a plan or an environment, with its fix."""

    field: str
    message: str
    fix: str = ""
    severity: str = "error"  # "error" stops a render/apply; "warning" is shown and does not

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        return f"{text} — {self.fix}" if self.fix else text


class WizardError(Exception):
    """An error with a message fit for the user (never a traceback).

    `transient` is True for a failure that is likely gone a few seconds later (throttling, a 5xx, a dropped
    connection): the runner tries such a step again (its actions are idempotent) before failing it.
    """

    @property
    def transient(self) -> bool:
        return False

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} — {self.fix}" if self.fix else self.message


class PlanError(WizardError):
    """A plan that cannot be used; carries one problem per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid plan")

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class StepError(WizardError):
    """A provisioning or cleanup step that failed; `fix` says what to do next."""


class Cancelled(WizardError):
    """A run stopped by the user at a safe point."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message, "run the same command again to resume")


def is_transient(err: BaseException) -> bool:
    """True when trying again soon is likely to work (see `WizardError.transient`)."""
    return isinstance(err, WizardError) and bool(err.transient)
