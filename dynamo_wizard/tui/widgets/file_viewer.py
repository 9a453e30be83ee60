"""FileViewer: the list of rendered files beside a syntax-highlighted view of the highlighted one."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from .syntax_view import SyntaxView, lexer_for


@dataclass(frozen=True)
class ViewedFile:
    path: str  # relative path, as exported
    text: str
    title: str = ""


class FileViewer(Horizontal):
    DEFAULT_CSS = """
    FileViewer {
        height: 1fr;
    }
    FileViewer > OptionList {
        width: 44;
        max-width: 45%;
        height: 1fr;
    }
    FileViewer > SyntaxView {
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.files: list[ViewedFile] = []

    def compose(self) -> ComposeResult:
        yield OptionList(id="file-list")
        yield SyntaxView(id="file-text")

    def set_files(self, files: list[ViewedFile]) -> None:
        self.files = list(files)
        options = self.query_one("#file-list", OptionList)
        options.clear_options()
        options.add_options([Option(f.path, id=str(i)) for i, f in enumerate(self.files)])
        if self.files:
            options.highlighted = 0
            self._show(0)
        else:
            self.query_one(SyntaxView).show("(no files)", "text")

    def _show(self, index: int) -> None:
        f = self.files[index]
        self.query_one(SyntaxView).show(f.text, lexer_for(f.path))

    @on(OptionList.OptionHighlighted, "#file-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option_index is not None and 0 <= event.option_index < len(self.files):
            self._show(event.option_index)

    @on(OptionList.OptionSelected, "#file-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one(SyntaxView).focus()

    @property
    def shown_path(self) -> str | None:
        options = self.query_one("#file-list", OptionList)
        i = options.highlighted
        return self.files[i].path if i is not None and 0 <= i < len(self.files) else None
