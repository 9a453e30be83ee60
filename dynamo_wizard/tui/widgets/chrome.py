"""The wizard's frame: where you are in the wizard, and which backend you are talking to."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..answers import SCREEN_TITLES, SCREENS


class WizardProgress(Static):
    """`1 Welcome › 2 Region › 3 Instances …` with the current screen highlighted."""

    DEFAULT_CSS = """
    WizardProgress {
        height: 1;
        padding: 0 1;
        background: $boost;
        color: $text-muted;
    }
    """

    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current = current

    def on_mount(self) -> None:
        self.update(self._text())

    def _text(self) -> Text:
        text = Text()
        accent = self.app.theme_variables.get("accent")
        for i, name in enumerate(SCREENS):
            if i:
                text.append(" › ")
            label = f"{i + 1} {SCREEN_TITLES[name]}"
            if name == self.current:
                text.append(label, style=f"bold {accent}" if accent else "bold")
            else:
                text.append(label)
        return text


class ModeBanner(Static):
    """SANDBOX or PLAN ONLY, shown on every screen when the wizard is not talking to real AWS."""

    DEFAULT_CSS = """
    ModeBanner {
        height: 1;
        width: 1fr;
        text-align: center;
        text-style: bold;
        display: none;
    }
    ModeBanner.-sandbox {
        display: block;
        background: $warning;
        color: $text;
    }
    ModeBanner.-plan-only {
        display: block;
        background: $secondary;
        color: $text;
    }
    """

    TEXTS = {
        "sandbox": "SANDBOX — simulated AWS and cluster on this machine; nothing is billed",
        "plan-only": "PLAN ONLY — nothing is checked against AWS; write a plan, apply it later",
    }

    def __init__(self, mode: str | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode = mode

    def on_mount(self) -> None:
        self.set_mode(self.mode)

    def set_mode(self, mode: str | None) -> None:
        self.mode = mode
        self.update(self.TEXTS.get(mode or "", ""))
        self.set_class(mode == "sandbox", "-sandbox")
        self.set_class(mode == "plan-only", "-plan-only")
