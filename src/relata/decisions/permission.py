"""May relata personalise or market to this customer on this channel now? The one place
where decisions asks the consent domain, on every decision.

``RELATA_DECISION_CHANNELS`` maps each decision channel to ``purpose:consent channel``.
Only a grant says yes (``consent.service.may_use``), with two refinements:

- ``*`` as consent channel: a grant of the purpose on any channel (the till has no
  consent channel of its own; a customer who allowed personalisation anywhere is
  personalised at the till).
- A web request whose context carries the visitor's cookie-banner choice
  (``context.consent.categoryPreferences``) follows it: the banner is the legal basis for
  personalising a web visit, so a "yes" there suffices unless the ledger holds an
  explicit revocation, and a "no" refuses whatever the ledger says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from relata.config import Settings
from relata.consent import cookies
from relata.consent import service as consent
from relata.consent.ledger import CHANNELS
from relata.consent.models import ConsentEntry
from relata.decisions import eligibility
from relata.decisions.policies import Exclusion

ANY = "*"


class ChannelError(ValueError):
    """A channel relata does not know, or one configured with an unknown consent."""


def requirement(settings: Settings, channel: str) -> tuple[str, str]:
    spec = settings.decision_channels.get(channel)
    if spec is None:
        known = ", ".join(sorted(settings.decision_channels))
        raise ChannelError(f"unknown channel {channel!r}; known: {known}")
    purpose, _, consent_channel = spec.partition(":")
    if purpose not in settings.consent_purposes or (
        consent_channel != ANY and consent_channel not in CHANNELS
    ):
        raise ChannelError(
            f"RELATA_DECISION_CHANNELS: {channel} needs {spec!r}, but the purpose must be one "
            f"of {settings.consent_purposes} and the channel one of {CHANNELS} or '*'"
        )
    return purpose, consent_channel


def check(
    session: Session,
    customer_id: int,
    channel: str,
    context: Mapping[str, Any],
    settings: Settings,
) -> Exclusion | None:
    """None when allowed; otherwise the reason, shown as the decision's ``blocked``."""
    purpose, consent_channel = requirement(settings, channel)
    if consent_channel == ANY:
        states = consent.states(session, customer_id, settings)
        if any(s.allowed for (p, _), s in states.items() if p == purpose):
            return None
        return Exclusion("consent", f"no {purpose} consent on any channel")
    banner = cookies.preferences(context) if consent_channel == "web" else None
    if banner is not None:
        if not cookies.allows_profiling(context, "web"):
            return Exclusion("consent", "the visitor's cookie choice refuses personalisation")
        state = consent.state_of(session, customer_id, purpose, consent_channel, settings)
        if state.status == "revoked":
            return Exclusion("consent", f"{purpose} on {consent_channel} was revoked")
        return None
    if consent.may_use(session, customer_id, purpose, consent_channel, settings):
        return None
    return Exclusion("consent", f"no {purpose} consent on {consent_channel}")


# A decision's cache miss reads the customer's consent ledger with the profile, in one
# statement, and hands it to consent's cache here: the check that follows reads nothing.
_E = ConsentEntry.__table__
_LEDGER = [
    _E.c[c]
    for c in ("purpose", "channel", "action", "occurred_at", "origin_customer_id", "covers", "id")
]
_READERS: dict[str, Any] = {}


def ledger_json(dialect: str, customer_id: Any) -> Any:
    """The customer's ledger rows as a JSON array (an extra of ``eligibility.load_with``)."""
    return eligibility.json_rows(dialect, _E, _LEDGER, _E.c.customer_id == customer_id)


def prime(
    session: Session, customer_id: int, ledger: list[Any], dialect: Any, settings: Settings
) -> None:
    """Consent's cache of the customer from the rows ``ledger_json`` read."""
    read = _READERS.get(dialect.name)
    if read is None:
        read = _READERS[dialect.name] = eligibility.row_converter(_LEDGER, dialect)
    consent.prime(session, customer_id, [read(r) for r in ledger], settings)
