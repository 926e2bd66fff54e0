"""The text form cut into tokens, each with its position for error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from relata.segments.rules.errors import RuleSyntaxError
from relata.segments.rules.limits import MAX_DIGITS, MAX_NUMBER, MAX_STRING, MAX_TEXT

# Typographic pairs that German keyboards and word processors produce.
QUOTES = {'"': '"', "'": "'", "„": "“", "“": "”", "«": "»"}
ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t"}
OPERATORS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "≠": "!=",
    "<": "<",
    "<=": "<=",
    "≤": "<=",
    ">": ">",
    ">=": ">=",
    "≥": ">=",
}

# ASCII digits only: "²" or "٣" are letters of a name here, not numbers.
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?![\w.-])")
_GERMAN_DATE = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})(?![\w.])")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?![\w.])")
DIGITS = "0123456789"
_WORD = re.compile(r"[^\W\d]\w*")
_OPERATOR = re.compile(r"==|!=|<>|<=|>=|[=<>≠≤≥]")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # word | string | number | date | op | ( | ) | , | . | end
    text: str
    pos: int
    value: object = None

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the rule"
        shown = self.text if len(self.text) <= 30 else self.text[:27] + "…"
        return f"'{shown}'"


def tokens(text: str) -> list[Token]:
    if len(text) > MAX_TEXT:
        raise RuleSyntaxError(f"the rule is longer than {MAX_TEXT} characters")
    found: list[Token] = []
    pos = 0
    while True:
        space = _SPACE.match(text, pos)
        if space:
            pos = space.end()
        if pos >= len(text):
            found.append(Token("end", "", pos))
            return found
        token = _token(text, pos)
        found.append(token)
        pos += len(token.text)


def _token(text: str, pos: int) -> Token:
    ch = text[pos]
    if ch in "(),.":
        return Token(ch, ch, pos)
    if ch in QUOTES:
        return _string(text, pos)
    if ch in DIGITS or (ch == "-" and text[pos + 1 : pos + 2] in tuple(DIGITS)):
        return _number_or_date(text, pos)
    if match := _WORD.match(text, pos):
        return Token("word", match.group(), pos)
    if match := _OPERATOR.match(text, pos):
        return Token("op", match.group(), pos, OPERATORS[match.group()])
    raise RuleSyntaxError(f"unexpected character {ch!r}", position=pos, text=text)


def _string(text: str, start: int) -> Token:
    close = QUOTES[text[start]]
    chars: list[str] = []
    pos = start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == close:
            value = "".join(chars)
            if len(value) > MAX_STRING:
                message = f"a text value is longer than {MAX_STRING} characters"
                raise RuleSyntaxError(message, position=start, text=text)
            return Token("string", text[start : pos + 1], start, value)
        if ch == "\\":
            escaped = text[pos + 1 : pos + 2]
            if escaped not in ESCAPES:
                raise RuleSyntaxError(
                    'unknown escape; use \\" \\\\ \\n or \\t', position=pos, text=text
                )
            chars.append(ESCAPES[escaped])
            pos += 2
            continue
        if ch == "\x00":
            raise RuleSyntaxError("a text value contains a NUL character", position=pos, text=text)
        chars.append(ch)
        pos += 1
    raise RuleSyntaxError(f"text value not closed: expected {close}", position=start, text=text)


def _number_or_date(text: str, pos: int) -> Token:
    if match := _ISO_DATE.match(text, pos):
        year, month, day = match.groups()
        return Token("date", match.group(), pos, _date(text, pos, year, month, day))
    if match := _GERMAN_DATE.match(text, pos):
        day, month, year = match.groups()
        return Token("date", match.group(), pos, _date(text, pos, year, month, day))
    if match := _NUMBER.match(text, pos):
        return Token("number", match.group(), pos, number(match.group(), pos, text))
    raise RuleSyntaxError(
        "expected a number (like 30 or 9.99) or a date (like 2025-06-01 or 01.06.2025)",
        position=pos,
        text=text,
    )


def _date(text: str, pos: int, year: str, month: str, day: str) -> date:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise RuleSyntaxError(
            f"there is no such day: {text[pos:].split()[0]}", position=pos, text=text
        ) from None


def number(raw: str, pos: int | None = None, text: str = "") -> Decimal:
    """A number literal, refused when a double could not hold it exactly."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise RuleSyntaxError(f"not a number: {raw!r}", position=pos, text=text) from None
    if not value.is_finite() or abs(value) >= MAX_NUMBER:
        raise RuleSyntaxError(f"number out of range: {raw}", position=pos, text=text)
    if len(value.as_tuple().digits) > MAX_DIGITS:
        raise RuleSyntaxError(
            f"a number has more than {MAX_DIGITS} digits: {raw}", position=pos, text=text
        )
    return value
