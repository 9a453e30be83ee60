"""PromptDialog: a modal one-line text prompt (a yes/no question is tui.widgets.confirm.ConfirmDialog)."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class PromptDialog(ModalScreen[str | None]):
    """Asks for one line of text; `validate` returns an error message or None. Returns None on Escape."""

    DEFAULT_CSS = """
    PromptDialog {
        align: center middle;
    }
    PromptDialog > Vertical {
        width: 80;
        max-width: 95%;
        height: auto;
        border: thick $primary;
        background: $panel;
        padding: 1 2;
    }
    PromptDialog .dialog-title {
        text-style: bold;
        margin-bottom: 1;
    }
    PromptDialog .dialog-error {
        color: $text-error;
        height: auto;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", *, help_text: str = "",
                 validate: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.help_text = help_text
        self.validate_value = validate

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="dialog-title")
            if self.help_text:
                yield Static(self.help_text, markup=False)
            yield Input(self.value, id="prompt-input")
            yield Static("", classes="dialog-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        error = self.validate_value(value) if self.validate_value else None
        if error:
            self.query_one(".dialog-error", Static).update(error)
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
