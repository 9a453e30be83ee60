"""SyntaxView: a scrollable, syntax-highlighted view of a text file (YAML, shell, JSON)."""

from __future__ import annotations

from rich.syntax import Syntax
from textual.containers import VerticalScroll
from textual.widgets import Static

LEXERS = {".yaml": "yaml", ".yml": "yaml", ".sh": "bash", ".json": "json", ".md": "markdown", ".txt": "text"}


def lexer_for(name: str) -> str:
    for suffix, lexer in LEXERS.items():
        if name.endswith(suffix):
            return lexer
    return "text"


class SyntaxView(VerticalScroll, can_focus=True):
    """Highlighted with Pygments through Rich (no tree-sitter needed); the theme's background is kept."""

    DEFAULT_CSS = """
    SyntaxView {
        height: 1fr;
        background: $surface;
        padding: 0 1;
    }
    SyntaxView:focus {
        background-tint: $foreground 5%;
    }
    SyntaxView > Static {
        width: auto;
    }
    """

    def __init__(self, text: str = "", lexer: str = "yaml", *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = text
        self._lexer = lexer

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(self._render_syntax(), classes="syntax-body")

    def _render_syntax(self) -> Syntax:
        theme = "monokai" if self.app.current_theme.dark else "default"
        # The pane's own background (a theme variable), not the Pygments theme's.
        background = self.app.theme_variables.get("surface")
        return Syntax(self._text or " ", self._lexer, theme=theme, line_numbers=True, word_wrap=False,
                      background_color=background)

    def show(self, text: str, lexer: str = "yaml") -> None:
        self._text = text
        self._lexer = lexer
        if self.is_mounted:
            self.query_one(".syntax-body", Static).update(self._render_syntax())
            self.scroll_home(animate=False)

    @property
    def text(self) -> str:
        return self._text
