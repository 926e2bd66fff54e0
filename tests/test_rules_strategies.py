"""Hypothesis strategies for rules: any tree (for the forms), and rules that pass the
registry with values drawn from the same small pools as the data (for the compilers), so
that equality, boundaries and missing values come up often."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from relata.segments.rules import ast
from relata.segments.rules.parser import KEYWORDS

# --- any well-formed tree ------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(lambda n: n not in KEYWORDS)
keys = st.from_regex(r"[\w\- ]{1,12}", fullmatch=True)
fields = st.one_of(names, st.builds(lambda k: f"properties.{k}", keys))
texts = st.text(st.characters(blacklist_characters="\x00"), max_size=20)
decimals = st.decimals(
    min_value=Decimal("-99999999999"), max_value=Decimal("99999999999"), places=3
).filter(lambda d: len(d.as_tuple().digits) <= 15)
scalars = st.one_of(texts, decimals, st.booleans(), st.dates())
windows = st.one_of(
    st.builds(ast.Last, st.integers(0, 36500), st.sampled_from(ast.UNITS)),
    st.builds(ast.Next, st.integers(0, 36500), st.sampled_from(ast.UNITS)),
    st.builds(ast.Since, st.dates()),
    st.builds(ast.Before, st.dates()),
    st.dates().flatmap(lambda d: st.builds(ast.Between, st.just(d), st.dates(min_value=d))),
    st.builds(ast.This, st.sampled_from(ast.PERIODS)),
)


@st.composite
def any_cond(draw: st.DrawFn) -> ast.Cond:
    field = draw(fields)
    op = draw(st.sampled_from(ast.FIELD_OPS))
    if op in ast.PRESENCE_OPS:
        return ast.Cond(field, op)
    if op == ast.WITHIN:
        return ast.Cond(field, op, draw(windows))
    if op in ast.LIST_OPS:
        return ast.Cond(field, op, tuple(draw(st.lists(scalars, min_size=1, max_size=4))))
    if op in ast.TEXT_OPS:
        return ast.Cond(field, op, draw(texts))
    return ast.Cond(field, op, draw(scalars))


def _groups(children: st.SearchStrategy[ast.Node]) -> st.SearchStrategy[ast.Node]:
    many = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.one_of(
        st.builds(ast.And, many), st.builds(ast.Or, many), st.builds(ast.Not, children)
    )


filters = st.recursive(any_cond(), _groups, max_leaves=4)


@st.composite
def any_source(draw: st.DrawFn) -> ast.Source:
    collection = draw(st.sampled_from(ast.COLLECTIONS))
    name = draw(st.none() | texts) if collection == "events" else None
    return ast.Source(collection, name, draw(st.none() | filters), draw(st.none() | windows))


any_agg = st.builds(
    lambda func, source, field, op, value: ast.Agg(
        func, source, None if func == "count" else field, op, value
    ),
    st.sampled_from(ast.AGGREGATES),
    any_source(),
    fields,
    st.sampled_from(ast.COMPARISONS),
    decimals,
)
any_leaf = st.one_of(
    any_cond(),
    st.builds(ast.Has, any_source()),
    any_agg,
    st.builds(ast.InSegment, texts),
)
any_rule = st.recursive(any_leaf, _groups, max_leaves=8)


# --- rules over relata's registry, with values from the data's pools -------------------------

NOWS = [
    datetime(2025, 7, 1, 10, 0, tzinfo=UTC),
    datetime(2025, 2, 28, 22, 30, tzinfo=UTC),  # already 1 March in Berlin; no 29 Feb
    datetime(2024, 2, 29, 12, 0, tzinfo=UTC),
    datetime(2025, 3, 30, 0, 30, tzinfo=UTC),  # the night clocks go forward
    datetime(2025, 12, 31, 23, 30, tzinfo=UTC),  # new year in Berlin
]
TEXTS = ["", "a", "ab", "Ab", "b", "B", "Müller", "müller", "x y", "shoes", "Laufschuhe"]
NUMBERS = [Decimal(x) for x in ("-1", "0", "0.5", "1", "2", "2.5", "3", "10", "99.99", "100")]
DAY_OFFSETS = [0, 1, 2, 6, 7, 8, 29, 30, 31, 89, 90, 91, 365, 366, 400, 9000, 12000]


def day_pool(now: datetime) -> list[date]:
    today = now.date()
    days = {today + timedelta(days=s * d) for d in DAY_OFFSETS for s in (1, -1)}
    days |= {date(1990, 2, 28), date(1992, 2, 29), date(1990, 3, 1), date(1985, 12, 31)}
    return sorted(days)


def moment_pool(now: datetime) -> list[datetime]:
    """Points around every bound a window can have: now ± days, and local midnights."""
    moments = set()
    for d in DAY_OFFSETS[:12]:
        for sign in (1, -1):
            base = now + sign * timedelta(days=d)
            moments |= {base, base - timedelta(seconds=1), base + timedelta(hours=3)}
    for day in day_pool(now)[:40]:
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=1)
        moments |= {midnight, midnight - timedelta(microseconds=1)}
    return sorted(moments)


CUSTOMER_TEXT = ["first_name", "last_name", "company", "email", "postcode", "city", "country"]
HOLDING_TEXT = ["category", "product_name", "currency"]
EVENT_NAMES = ["Order Completed", "Email Opened", "Page Viewed"]
PROPERTY_KEYS = ["campaign", "revenue", "flag", "n m"]
PURPOSES = ["marketing", "research"]
CONSENT_CHANNELS = ["email", "sms"]


def typed_windows(now: datetime) -> st.SearchStrategy[ast.Window]:
    days = st.sampled_from(day_pool(now))
    amounts = st.sampled_from([0, 1, 2, 7, 30, 90, 365])
    return st.one_of(
        st.builds(ast.Last, amounts, st.sampled_from(ast.UNITS)),
        st.builds(ast.Next, amounts, st.sampled_from(ast.UNITS)),
        st.builds(ast.Since, days),
        st.builds(ast.Before, days),
        st.tuples(days, days).map(lambda p: ast.Between(min(p), max(p))),
        st.builds(ast.This, st.sampled_from(ast.PERIODS)),
    )


def _compare(draw: st.DrawFn, field: str, pool: st.SearchStrategy, ordered: bool = True):  # type: ignore[no-untyped-def]
    ops = [*ast.COMPARISONS, *ast.LIST_OPS, *ast.PRESENCE_OPS]
    if not ordered:
        ops = ["=", "!=", *ast.LIST_OPS, *ast.PRESENCE_OPS]
    op = draw(st.sampled_from(ops))
    if op in ast.PRESENCE_OPS:
        return ast.Cond(field, op)
    if op in ast.LIST_OPS:
        return ast.Cond(field, op, tuple(draw(st.lists(pool, min_size=1, max_size=3))))
    return ast.Cond(field, op, draw(pool))


def _text_cond(draw: st.DrawFn, field: str) -> ast.Cond:
    if draw(st.booleans()):
        return ast.Cond(field, draw(st.sampled_from(ast.TEXT_OPS)), draw(st.sampled_from(TEXTS)))
    return _compare(draw, field, st.sampled_from(TEXTS))


def _time_cond(draw: st.DrawFn, field: str, now: datetime) -> ast.Cond:
    if draw(st.booleans()):
        return ast.Cond(field, ast.WITHIN, draw(typed_windows(now)))
    return _compare(draw, field, st.sampled_from(day_pool(now)))


@st.composite
def customer_cond(draw: st.DrawFn, now: datetime) -> ast.Cond:
    kinds = ["text", "gender", "birth", "age", "birthday", "moment", "trait", "consent"]
    kind = draw(st.sampled_from(kinds))
    if kind == "consent":
        purpose, channel = draw(st.sampled_from(PURPOSES)), draw(st.sampled_from(CONSENT_CHANNELS))
        statuses = st.sampled_from(["granted", "pending", "revoked", "unknown"])
        return _compare(draw, f"consent.{purpose}.{channel}", statuses, ordered=False)
    if kind == "text":
        return _text_cond(draw, draw(st.sampled_from(CUSTOMER_TEXT)))
    if kind == "gender":
        return _compare(draw, "gender", st.sampled_from(["m", "f", "d"]), ordered=False)
    if kind == "birth":
        return _time_cond(draw, "birth_date", now)
    if kind == "age":
        return _compare(draw, "age", st.sampled_from([*NUMBERS, Decimal(30), Decimal(35)]))
    if kind == "birthday":
        window = draw(
            st.one_of(
                st.builds(ast.Last, st.sampled_from([0, 1, 7, 30]), st.sampled_from(ast.UNITS)),
                st.builds(ast.Next, st.sampled_from([0, 1, 7, 30]), st.sampled_from(ast.UNITS)),
                st.builds(ast.This, st.sampled_from(ast.PERIODS)),
            )
        )
        return ast.Cond("birthday", ast.WITHIN, window)
    if kind == "moment":
        return _time_cond(draw, draw(st.sampled_from(["created_at", "updated_at"])), now)
    trait = draw(st.sampled_from(["purchases_count", "purchases_total", "active_contracts"]))
    if trait == "purchases_total" or draw(st.booleans()):
        return _compare(draw, trait, st.sampled_from(NUMBERS))
    when = draw(st.sampled_from(["first_purchase_at", "last_purchase_at"]))
    return _time_cond(draw, when, now)


@st.composite
def row_cond(draw: st.DrawFn, collection: str, now: datetime) -> ast.Cond:
    if collection == "events":
        kind = draw(st.sampled_from(["name", "type", "source", "time", "property"]))
        if kind == "name":
            return _compare(draw, "name", st.sampled_from(EVENT_NAMES))
        if kind == "type":
            return _compare(draw, "type", st.sampled_from(["track", "page"]), ordered=False)
        if kind == "source":
            return _text_cond(draw, "source")
        if kind == "time":
            return _time_cond(draw, "occurred_at", now)
        field = f"properties.{draw(st.sampled_from(PROPERTY_KEYS))}"
        pool = draw(st.sampled_from(["text", "number", "bool"]))
        if pool == "text":
            return _text_cond(draw, field)
        if pool == "number":
            return _compare(draw, field, st.sampled_from(NUMBERS))
        op = draw(st.sampled_from(["=", "!=", "is set", "is empty"]))
        return ast.Cond(field, op, None if op.startswith("is") else draw(st.booleans()))
    if collection == "identifiers":
        return _text_cond(draw, draw(st.sampled_from(["kind", "value"])))
    kind = draw(st.sampled_from(["text", "number", "status", "time"]))
    if kind == "text":
        return _text_cond(draw, draw(st.sampled_from(HOLDING_TEXT)))
    if kind == "number":
        return _compare(
            draw, draw(st.sampled_from(["amount", "quantity"])), st.sampled_from(NUMBERS)
        )
    if kind == "status":
        return _compare(draw, "status", st.sampled_from(["completed", "active", "ended"]), False)
    return _time_cond(draw, draw(st.sampled_from(["started_at", "ended_at"])), now)


def _typed_groups(leaf: st.SearchStrategy[ast.Node]) -> st.SearchStrategy[ast.Node]:
    return st.recursive(leaf, _groups, max_leaves=3)


@st.composite
def typed_source(draw: st.DrawFn, now: datetime) -> ast.Source:
    collection = draw(st.sampled_from(ast.COLLECTIONS))
    name = None
    if collection == "events" and draw(st.booleans()):
        name = draw(st.sampled_from(EVENT_NAMES))
    where = draw(st.none() | _typed_groups(row_cond(collection, now)))
    window = draw(st.none() | typed_windows(now))
    return ast.Source(collection, name, where, window)


@st.composite
def typed_agg(draw: st.DrawFn, now: datetime) -> ast.Agg:
    source = draw(typed_source(now))
    func = draw(st.sampled_from(ast.AGGREGATES))
    field = None
    if func != "count":
        if source.collection == "identifiers":
            func = "count"
        elif source.collection == "events":
            field = f"properties.{draw(st.sampled_from(PROPERTY_KEYS))}"
        else:
            field = draw(st.sampled_from(["amount", "quantity"]))
    op = draw(st.sampled_from(ast.COMPARISONS))
    limit = draw(st.sampled_from([*NUMBERS, Decimal("0.001"), Decimal("1.005"), Decimal("150")]))
    return ast.Agg(func, source, field, op, limit)


def typed_rule(now: datetime, segments: tuple[str, ...] = ()) -> st.SearchStrategy[ast.Node]:
    leaves = [customer_cond(now), st.builds(ast.Has, typed_source(now)), typed_agg(now)]
    if segments:
        leaves.append(st.builds(ast.InSegment, st.sampled_from(segments)))
    return st.recursive(st.one_of(*leaves), _groups, max_leaves=5)
