"""Offers and contact policies as the engine holds them: frozen values, checked once. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

KINDS = ("product", "content", "banner", "coupon", "activity", "nothing")
STATUSES = ("active", "paused", "archived")
HELD_MATCH = ("product", "category", "none")
POLICY_KINDS = ("frequency", "suppress", "volume")
RESPONSE_KINDS = ("impression", "click", "accept", "reject", "convert")
KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
PLACEMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,99}")


class CatalogueError(ValueError):
    """An offer or policy that cannot be saved as given; the message says which field."""


@dataclass(frozen=True, slots=True)
class OfferSpec:
    id: int
    key: str
    name: str
    kind: str
    value: float
    channels: frozenset[str]
    placements: frozenset[str] = frozenset()  # empty: any placement
    category: str | None = None
    product_id: str | None = None
    weight: float = 1.0
    cost: float = 0.0
    budget: float | None = None
    cap_total: int | None = None
    cap_daily: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    rule: str | None = None
    max_impressions: int | None = None
    impression_window_days: int = 30
    reject_suppress_days: int | None = None
    suppress_held: str = "product"
    held_days: int = 90
    template: str | None = None
    status: str = "active"
    version: int = 1

    @property
    def capped(self) -> bool:
        """Limited by a total or daily cap or a budget: its usage is counted and read."""
        return self.cap_total is not None or self.cap_daily is not None or self.budget is not None

    @property
    def is_nothing(self) -> bool:
        """ "Do nothing": chosen only when no offer is worth more than its value."""
        return self.kind == "nothing"

    def shown_on(self, channel: str, placement: str | None) -> bool:
        if channel not in self.channels:
            return False
        return not self.placements or placement is None or placement in self.placements

    def live(self, now: datetime) -> bool:
        if self.status != "active":
            return False
        if self.starts_at is not None and now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """``frequency``: at most ``max_count`` contacts in ``window_days`` on these channels.
    ``suppress``: no contact at all on these channels for customers matching ``rule``.
    ``volume``: at most ``max_count`` contacts a day on these channels, all customers together.
    """

    id: int
    name: str
    kind: str
    channels: frozenset[str] = frozenset()  # empty: every channel
    max_count: int | None = None
    window_days: int | None = None
    rule: str | None = None
    version: int = 1

    def covers(self, channel: str) -> bool:
        return not self.channels or channel in self.channels


@dataclass(frozen=True, slots=True)
class Catalogue:
    version: int
    offers: tuple[OfferSpec, ...]
    policies: tuple[PolicySpec, ...] = ()
    index: dict[int, int] = field(default_factory=dict)  # offer id -> position

    @classmethod
    def build(cls, version: int, offers: list[OfferSpec], policies: list[PolicySpec]) -> Catalogue:
        ordered = tuple(sorted(offers, key=lambda o: o.id))
        return cls(version, ordered, tuple(policies), {o.id: i for i, o in enumerate(ordered)})


def check_offer(offer: OfferSpec, channels: frozenset[str]) -> None:
    """Raise CatalogueError naming the first field that is wrong."""
    if not KEY.fullmatch(offer.key):
        raise CatalogueError(
            f"key: {offer.key!r} must be 1-100 characters of a-z, 0-9, '_', '.', '-'"
        )
    if not offer.name.strip():
        raise CatalogueError("name: must not be empty")
    _choice("kind", offer.kind, KINDS)
    _choice("status", offer.status, STATUSES)
    _choice("suppress_held", offer.suppress_held, HELD_MATCH)
    if not offer.channels:
        raise CatalogueError("channels: name at least one channel")
    if unknown := sorted(offer.channels - channels):
        raise CatalogueError(
            f"channels: unknown channel {unknown[0]!r}; known: {', '.join(sorted(channels))}"
        )
    for placement in offer.placements:
        if not PLACEMENT.fullmatch(placement):
            raise CatalogueError(f"placements: {placement!r} is not a placement name")
    if offer.value < 0 or offer.weight < 0 or offer.cost < 0:
        raise CatalogueError("value, weight and cost must not be negative")
    for name in ("cap_total", "cap_daily", "max_impressions", "budget"):
        if (limit := getattr(offer, name)) is not None and limit < 0:
            raise CatalogueError(f"{name}: must not be negative")
    if offer.impression_window_days < 1 or offer.held_days < 0:
        raise CatalogueError("impression_window_days must be ≥ 1 and held_days ≥ 0")
    if offer.reject_suppress_days is not None and offer.reject_suppress_days < 0:
        raise CatalogueError("reject_suppress_days: must not be negative")
    if offer.starts_at and offer.ends_at and offer.ends_at <= offer.starts_at:
        raise CatalogueError("ends_at: must be after starts_at")


def check_policy(policy: PolicySpec, channels: frozenset[str]) -> None:
    if not KEY.fullmatch(policy.name):
        raise CatalogueError(f"name: {policy.name!r} must be 1-100 characters of a-z, 0-9, _.-")
    _choice("kind", policy.kind, POLICY_KINDS)
    if unknown := sorted(policy.channels - channels):
        raise CatalogueError(
            f"channels: unknown channel {unknown[0]!r}; known: {', '.join(sorted(channels))}"
        )
    counted = policy.kind in ("frequency", "volume")
    if counted and (policy.max_count is None or policy.max_count < 0):
        raise CatalogueError(f"max_count: a {policy.kind} policy needs max_count ≥ 0")
    if policy.kind == "frequency" and (policy.window_days or 0) < 1:
        raise CatalogueError("window_days: a frequency policy needs window_days ≥ 1")
    if policy.kind == "suppress" and not policy.rule:
        raise CatalogueError("rule: a suppress policy needs a rule saying whom it suppresses")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise CatalogueError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
