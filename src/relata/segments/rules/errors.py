"""What is wrong with a rule, and where."""

from __future__ import annotations


class RuleError(ValueError):
    """A rule that cannot be used. ``position`` is the offset in the text form, if known;
    ``path`` the place in the JSON form (``and.2.op``), if known."""

    def __init__(
        self, message: str, *, position: int | None = None, text: str = "", path: str = ""
    ) -> None:
        self.message = message
        self.position = position
        self.path = path
        self.line, self.column = _line_column(text, position) if position is not None else (0, 0)
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.position is not None:
            return f"line {self.line}, column {self.column}: {self.message}"
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"detail": str(self), "message": self.message}
        if self.position is not None:
            found.update(position=self.position, line=self.line, column=self.column)
        if self.path:
            found["path"] = self.path
        return found


class RuleSyntaxError(RuleError):
    """The text form does not parse."""


def _line_column(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    line = before.count("\n") + 1
    return line, position - (before.rfind("\n") + 1) + 1
