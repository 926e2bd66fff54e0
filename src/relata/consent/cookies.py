"""The visitor's cookie-banner choice carried by a web event. Pure: no I/O.

Trackers send it the way Segment's consent management does:
``context.consent.categoryPreferences = {"Personalisation": true, "Advertising": false}``.
Category names are the banner's own; the ones below count as personalisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PERSONALISATION = frozenset(
    {"personalisation", "personalization", "personalisierung", "profiling", "profilbildung"}
)


def preferences(context: Mapping[str, Any]) -> dict[str, bool] | None:
    """The categories the visitor allowed or refused; None when the event carries no choice."""
    consent = context.get("consent")
    if not isinstance(consent, Mapping):
        return None
    chosen = consent.get("categoryPreferences")
    if not isinstance(chosen, Mapping):
        return None
    return {str(k): v for k, v in chosen.items() if isinstance(v, bool)}


def problem(context: Mapping[str, Any]) -> str | None:
    """Why ``context.consent`` cannot be read, for a 422 at the door; None when it can."""
    if "consent" not in context:
        return None
    consent = context["consent"]
    if not isinstance(consent, Mapping):
        return "context.consent must be an object"
    chosen = consent.get("categoryPreferences")
    if not isinstance(chosen, Mapping):
        return "context.consent.categoryPreferences must be an object of category: true/false"
    if bad := [k for k, v in chosen.items() if not isinstance(v, bool)]:
        return f"context.consent.categoryPreferences.{bad[0]} must be true or false"
    return None


def allows_profiling(context: Mapping[str, Any], channel: str) -> bool:
    """May this event be used to profile the person?

    An event that carries the visitor's choice follows it. A web event without one was
    sent without consent: tracking needs an opt-in (ePrivacy), so it is not used for
    profiling. Other channels' events (a shop's order, a call) carry no banner choice;
    for them the person's consent ledger decides when the data is used.
    """
    chosen = preferences(context)
    if chosen is None:
        return channel != "web"
    return any(allowed for name, allowed in chosen.items() if name.lower() in PERSONALISATION)
