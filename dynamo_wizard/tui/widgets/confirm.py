"""A modal question with a yes and a no; for destructive actions, the yes needs a typed word.

`ConfirmDialog` is a `ModalScreen[bool]`: push it with a callback or `push_screen_wait` and get True
(confirmed) or False (cancelled, escape). With `require_text`, the confirm button stays disabled until the
input holds exactly that text (the deployment name before a cleanup), so a stray Enter deletes nothing.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmDialog(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmDialog {
        align: center middle;
        background: $background 60%;
        & > #confirm-box {
            width: 64;
            max-width: 90%;
            height: auto;
            border: thick $primary;
            background: $surface;
            padding: 1 2;
        }
        &.-destructive > #confirm-box { border: thick $error; }
        #confirm-title { text-style: bold; width: 1fr; margin-bottom: 1; }
        #confirm-message { width: 1fr; margin-bottom: 1; }
        #confirm-hint { color: $text-muted; width: 1fr; }
        #confirm-input { margin-bottom: 1; }
        #confirm-buttons { height: auto; align-horizontal: right; }
        #confirm-buttons Button { margin-left: 2; }
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(
        self,
        title: str,
        message: str,
        *,
        confirm_label: str = "Yes",
        cancel_label: str = "No",
        require_text: str | None = None,
        destructive: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.title_text = title
        self.message = message
        self.confirm_label = confirm_label
        self.cancel_label = cancel_label
        self.require_text = require_text
        if destructive:
            self.add_class("-destructive")
        self.destructive = destructive

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(self.title_text, id="confirm-title", markup=False)
            yield Static(self.message, id="confirm-message", markup=False)
            if self.require_text is not None:
                yield Label(f"Type {self.require_text} to confirm:", id="confirm-hint", markup=False)
                yield Input(placeholder=self.require_text, id="confirm-input")
            with Horizontal(id="confirm-buttons"):
                yield Button(self.cancel_label, id="confirm-no")
                yield Button(
                    self.confirm_label,
                    id="confirm-yes",
                    variant="error" if self.destructive else "primary",
                    disabled=self.require_text is not None,
                )

    def on_mount(self) -> None:
        if self.require_text is not None:
            self.query_one("#confirm-input", Input).focus()
        else:
            # The safe answer has the focus: Enter alone never confirms.
            self.query_one("#confirm-no", Button).focus()

    @property
    def typed_ok(self) -> bool:
        if self.require_text is None:
            return True
        return self.query_one("#confirm-input", Input).value.strip() == self.require_text

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#confirm-yes", Button).disabled = not self.typed_ok

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.typed_ok:
            self.dismiss(True)
        else:
            self.query_one("#confirm-hint", Label).update(
                f"That is not {self.require_text}; type it exactly to confirm, or press escape."
            )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm-yes" and self.typed_ok:
            self.dismiss(True)
        elif event.button.id == "confirm-no":
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
