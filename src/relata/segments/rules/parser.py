"""The text form to the tree: a recursive-descent parser that says what it expected where.

    rule     := or END
    or       := and (("or" | "oder") and)*
    and      := unary (("and" | "und") unary)*
    unary    := ("not" | "nicht") unary | primary
    primary  := "(" or ")"
              | "has" COLLECTION [STRING] ["where" unary] [window]
              | "count" "(" COLLECTION [STRING] ["where" unary] [window] ")" CMP NUMBER
              | ("sum" | "min" | "max") "(" field "of" COLLECTION … ")" CMP NUMBER
              | "in" "segment" STRING
              | field condition
    condition:= CMP literal | ["not"] "in" "(" literal ("," literal)* ")"
              | ("contains" | "starts" "with" | "ends" "with") STRING
              | "is" ("empty" | "set") | window
    window   := "in" ("last" | "next") INTEGER UNIT | "since" DATE | "before" DATE
              | "between" DATE "and" DATE | "this" ("day" | "week" | "month" | "year") | "today"
    field    := WORD ("." (WORD | STRING))*

A `where` filter is one condition or a group in parentheses, so that in
``has purchase where category = "Schuhe" and age > 30`` the age belongs to the customer.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from relata.segments.rules import ast
from relata.segments.rules.ast import Node, Source, Window
from relata.segments.rules.errors import RuleSyntaxError
from relata.segments.rules.lexer import Token, tokens
from relata.segments.rules.limits import MAX_AMOUNT, MAX_DEPTH, MAX_LIST, MAX_NODES

AND_WORDS = ("and", "und")
OR_WORDS = ("or", "oder")
NOT_WORDS = ("not", "nicht")
WINDOW_WORDS = ("since", "before", "between", "this", "today")
UNIT_WORDS = {
    **{w: "days" for w in ("day", "days", "tag", "tage", "tagen")},
    **{w: "weeks" for w in ("week", "weeks", "woche", "wochen")},
    **{w: "months" for w in ("month", "months", "monat", "monate", "monaten")},
    **{w: "years" for w in ("year", "years", "jahr", "jahre", "jahren")},
}
PERIOD_WORDS = {"day": "day", "week": "week", "month": "month", "year": "year"}
COLLECTION_WORDS = {
    **{c: c for c in ast.COLLECTIONS},
    **{s: c for c, s in ast.SINGULAR.items()},
}
# Words that end a condition or start a construct: never the start of a field name.
KEYWORDS = frozenset(
    {
        *AND_WORDS,
        *OR_WORDS,
        *NOT_WORDS,
        *WINDOW_WORDS,
        "has",
        "in",
        "where",
        "of",
        "is",
        "contains",
        "starts",
        "ends",
        "true",
        "false",
        *ast.AGGREGATES,
    }
)
# A key of event properties or a consent purpose: it becomes a bound JSON path, never SQL.
NAME_PART = re.compile(r"[\w\- ]{1,64}")
CMP_TEXT = "a comparison (=, !=, <, <=, >, >=)"


def parse(text: str) -> Node:
    """The tree of a rule in its text form; raises RuleSyntaxError pointing at the problem."""
    return parse_located(text)[0]


def parse_located(text: str) -> tuple[Node, dict[int, int]]:
    """The tree, and where each condition starts in the text (by ``id`` of its node), so
    that a later check of the tree can point at the condition it refuses."""
    parser = _Parser(text)
    node = parser.or_()
    parser.expect_end()
    if ast.depth(node) > MAX_DEPTH:
        raise RuleSyntaxError(f"the rule is nested deeper than {MAX_DEPTH} levels")
    return node, parser.positions


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokens(text)
        self.i = 0
        self.nodes = 0
        self.level = 0  # open parentheses, 'not's and 'where's: bounds the recursion
        self.positions: dict[int, int] = {}

    # --- helpers -------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tok
        if token.kind != "end":
            self.i += 1
        return token

    def fail(self, expected: str, token: Token | None = None) -> RuleSyntaxError:
        token = token or self.tok
        return RuleSyntaxError(
            f"expected {expected}, found {token.describe()}", position=token.pos, text=self.text
        )

    def word(self, *words: str, expected: str) -> Token:
        if not self.tok.is_word(*words):
            raise self.fail(expected)
        return self.take()

    def kind(self, kind: str, expected: str) -> Token:
        if self.tok.kind != kind:
            raise self.fail(expected)
        return self.take()

    def counted(self, node: Node) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise RuleSyntaxError(
                f"the rule has more than {MAX_NODES} conditions",
                position=self.tok.pos,
                text=self.text,
            )
        return node

    def expect_end(self) -> None:
        if self.tok.kind != "end":
            raise self.fail("'and', 'or' or the end of the rule")

    # --- boolean structure ---------------------------------------------------------------

    def or_(self) -> Node:
        items = [self.and_()]
        while self.tok.is_word(*OR_WORDS):
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else self.counted(ast.Or(tuple(items)))

    def and_(self) -> Node:
        items = [self.unary()]
        while self.tok.is_word(*AND_WORDS):
            self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else self.counted(ast.And(tuple(items)))

    def unary(self) -> Node:
        if self.tok.is_word(*NOT_WORDS):
            self.deeper()
            self.take()
            node = self.counted(ast.Not(self.unary()))
            self.level -= 1
            return node
        return self.primary()

    def deeper(self) -> None:
        self.level += 1
        if self.level > MAX_DEPTH:
            raise RuleSyntaxError(
                f"the rule is nested deeper than {MAX_DEPTH} levels",
                position=self.tok.pos,
                text=self.text,
            )

    def primary(self) -> Node:
        start = self.tok.pos
        node = self._primary()
        self.positions.setdefault(id(node), start)
        return node

    def _primary(self) -> Node:
        tok = self.tok
        if tok.kind == "(":
            self.deeper()
            self.take()
            node = self.or_()
            self.kind(")", "')' or 'and'/'or'")
            self.level -= 1
            return node
        if tok.is_word("has"):
            self.take()
            return self.counted(ast.Has(self.source()))
        if tok.is_word(*ast.AGGREGATES) and self.peek().kind == "(":
            return self.counted(self.aggregate())
        if tok.is_word("in") and self.peek().is_word("segment"):
            self.i += 2
            name = self.kind("string", 'a segment name in quotes, like "Stammkunden"')
            return self.counted(ast.InSegment(str(name.value)))
        if tok.kind == "word" and tok.text.lower() not in KEYWORDS:
            field = self.field()
            return self.counted(self.condition(field))
        raise self.fail(
            "a condition (a field like age, 'has …', 'count(…)', 'in segment …', 'not' or '(')"
        )

    # --- collections ---------------------------------------------------------------------

    def source(self) -> Source:
        tok = self.tok
        collection = COLLECTION_WORDS.get(tok.text.lower()) if tok.kind == "word" else None
        if collection is None:
            raise self.fail("event, purchase, contract, holding or identifier")
        self.take()
        name = None
        if collection == "events" and self.tok.kind == "string":
            name = str(self.take().value)
        where = None
        if self.tok.is_word("where"):
            self.deeper()
            self.take()
            where = self.unary()
            self.level -= 1
        window = self.window() if self.at_window() else None
        return Source(collection, name, where, window)

    def aggregate(self) -> ast.Agg:
        func = self.take().text.lower()
        self.take()  # "("
        field = None
        if func != "count":
            field = self.field()
            self.word("of", expected=f"'of' after the field to {func}, as in {func}(amount of …)")
        source = self.source()
        self.kind(")", "')', 'where' or a time window like 'in last 90 days'")
        op = self.kind("op", CMP_TEXT)
        value = self.kind("number", f"a number to compare the {func} with")
        assert isinstance(op.value, str) and isinstance(value.value, Decimal)
        return ast.Agg(func, source, field, op.value, value.value)

    # --- conditions on a field -----------------------------------------------------------

    def field(self) -> str:
        first = self.tok
        if first.kind != "word" or first.text.lower() in KEYWORDS:
            raise self.fail("a field name")
        parts = [self.take().text]
        while self.tok.kind == "." and self.tok.pos == self.tokens[self.i - 1].pos + len(
            self.tokens[self.i - 1].text
        ):
            self.take()
            part = self.tok
            if part.kind not in ("word", "string"):
                raise self.fail("a name after '.'")
            name = part.text if part.kind == "word" else str(part.value)
            if not NAME_PART.fullmatch(name):
                raise RuleSyntaxError(
                    "a name after '.' holds 1 to 64 letters, digits, '_', '-' or spaces",
                    position=part.pos,
                    text=self.text,
                )
            parts.append(name)
            self.take()
        return ".".join(parts)

    def condition(self, field: str) -> ast.Cond:
        tok = self.tok
        if tok.kind == "op":
            self.take()
            return ast.Cond(field, str(tok.value), self.literal())
        if tok.is_word("in") and self.peek().kind == "(":
            self.take()
            return ast.Cond(field, "in", self.literal_list())
        if tok.is_word(*NOT_WORDS) and self.peek().is_word("in"):
            self.i += 2
            if self.tok.kind != "(":
                raise self.fail("'(' and a list of values after 'not in'")
            return ast.Cond(field, "not in", self.literal_list())
        if tok.is_word("contains"):
            self.take()
            return ast.Cond(field, "contains", self.text_value("contains"))
        if tok.is_word("starts", "ends") and self.peek().is_word("with"):
            op = f"{tok.text.lower()} with"
            self.i += 2
            return ast.Cond(field, op, self.text_value(op))
        if tok.is_word("is"):
            self.take()
            presence = self.word("empty", "set", expected="'empty' or 'set' after 'is'")
            return ast.Cond(field, f"is {presence.text.lower()}")
        if self.at_window():
            return ast.Cond(field, ast.WITHIN, self.window())
        raise self.fail(
            f"{CMP_TEXT}, 'in (…)', 'contains', 'starts with', 'ends with', 'is empty', "
            f"'is set' or a time window after '{field}'"
        )

    def literal(self) -> ast.Scalar:
        tok = self.tok
        if tok.kind in ("string", "number", "date"):
            self.take()
            assert isinstance(tok.value, str | Decimal | date)
            return tok.value
        if tok.is_word("true", "false"):
            self.take()
            return tok.text.lower() == "true"
        raise self.fail(
            'a value: "text", a number, a date (2025-06-01 or 01.06.2025), true or false'
        )

    def literal_list(self) -> tuple[ast.Scalar, ...]:
        self.kind("(", "'('")
        values = [self.literal()]
        while self.tok.kind == ",":
            self.take()
            values.append(self.literal())
            if len(values) > MAX_LIST:
                raise self.fail(f"at most {MAX_LIST} values in a list")
        self.kind(")", "',' or ')'")
        return tuple(values)

    def text_value(self, op: str) -> str:
        tok = self.kind("string", f"a text in quotes after '{op}', like \"burg\"")
        return str(tok.value)

    # --- time windows --------------------------------------------------------------------

    def at_window(self) -> bool:
        tok = self.tok
        if tok.is_word("in"):
            return self.peek().is_word("last", "next")
        return tok.is_word(*WINDOW_WORDS)

    def window(self) -> Window:
        tok = self.take()
        word = tok.text.lower()
        if word == "in":
            direction = self.take().text.lower()
            amount = self.kind("number", f"a whole number of days, weeks, … after '{direction}'")
            count = amount.value
            assert isinstance(count, Decimal)
            if count != count.to_integral_value() or not 0 <= count <= MAX_AMOUNT:
                raise self.fail(f"a whole number from 0 to {MAX_AMOUNT}", amount)
            unit_tok = self.tok
            unit = UNIT_WORDS.get(unit_tok.text.lower()) if unit_tok.kind == "word" else None
            if unit is None:
                raise self.fail("days, weeks, months or years")
            self.take()
            cls = ast.Last if direction == "last" else ast.Next
            return cls(int(amount.value), unit)
        if word in ("since", "before"):
            day = self.date_value()
            return ast.Since(day) if word == "since" else ast.Before(day)
        if word == "between":
            first = self.date_value()
            self.word(*AND_WORDS, expected="'and' between the two dates")
            last = self.date_value()
            if last < first:
                raise self.fail(f"a date on or after {first.isoformat()}", self.tokens[self.i - 1])
            return ast.Between(first, last)
        if word == "this":
            period = self.tok
            if not period.is_word(*PERIOD_WORDS):
                raise self.fail("day, week, month or year after 'this'")
            self.take()
            return ast.This(PERIOD_WORDS[period.text.lower()])
        return ast.This("day")  # today

    def date_value(self) -> date:
        tok = self.kind("date", "a date like 2025-06-01 or 01.06.2025")
        assert isinstance(tok.value, date)
        return tok.value
