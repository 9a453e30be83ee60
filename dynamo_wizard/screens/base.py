"""What every wizard screen shares: the frame (mode banner, progress, status line, footer of keys),
Back on Escape, help on `?`, and a status line that says what is loading or what went wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..tui.messages import LoadFailed
from ..tui.widgets.chrome import ModeBanner, WizardProgress

if TYPE_CHECKING:
    from ..tui.app import WizardApp


class StatusLine(Static):
    """One line under the body: what is loading, what was refused and why."""


class WizardScreen(Screen[None]):
    """A wizard step. Subclasses set `step` and implement `compose_body`, `load` and `accept`."""

    step: ClassVar[str] = ""
    heading: ClassVar[str] = ""
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]

    @property
    def wizard(self) -> WizardApp:
        return cast("WizardApp", self.app)

    def compose(self) -> ComposeResult:
        yield ModeBanner(self.wizard.mode_banner, id="mode-banner")
        yield WizardProgress(self.step, id="progress")
        with Vertical(id="body", classes=f"body-{self.step}"):
            if self.heading:
                yield Static(self.heading, classes="screen-heading")
            yield from self.compose_body()
        yield StatusLine("", id="status")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    # Status ----------------------------------------------------------------------------------------

    def set_status(self, text: str, kind: str = "info") -> None:
        """kind: info | loading | error | warning | ok (a CSS class on the line)."""
        line = self.query_one("#status", StatusLine)
        line.update(Text(text))
        for k in ("info", "loading", "error", "warning", "ok"):
            line.set_class(k == kind, f"-{k}")

    def refuse(self, reason: str) -> None:
        """Invalid input or an unavailable option: say why, keep everything as it was."""
        self.set_status(reason, "error")
        self.app.bell()

    def on_load_failed(self, message: LoadFailed) -> None:
        text = f"Could not read {message.what}: {message.message}"
        if message.fix:
            text += f" — {message.fix}"
        self.set_status(text, "error")
        self.loading_done()

    def loading_done(self) -> None:
        """Subclasses clear their loading indicators here."""

    # Navigation ------------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.wizard.go_back(self)

    def action_help(self) -> None:
        self.wizard.show_help(self.step)

    def on_screen_resume(self) -> None:
        self.query_one("#mode-banner", ModeBanner).set_mode(self.wizard.mode_banner)
