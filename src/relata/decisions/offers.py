"""Managing the catalogue: offers and contact policies, every change versioned.

Services take a session and flush; the caller owns the transaction. Each change is
checked (fields, channels, the eligibility rule), stored with a snapshot in
``catalogue_versions`` and bumps ``decision_state.catalogue_version``, so every engine
reloads the catalogue within its sync interval: no restart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relata.config import Settings
from relata.db import utcnow
from relata.decisions import eligibility, sync
from relata.decisions.catalogue import CatalogueError, check_offer, check_policy
from relata.decisions.loader import offer_spec, policy_spec
from relata.decisions.models import CatalogueVersion, ContactPolicy, Offer
from relata.decisions.schemas import (
    OfferRead,
    OfferUpdate,
    OfferWrite,
    PolicyRead,
    PolicyUpdate,
    PolicyWrite,
)


class OfferNotFound(LookupError):
    pass


class OfferExists(ValueError):
    pass


def _channels(settings: Settings) -> frozenset[str]:
    return frozenset(settings.decision_channels)


def _check_rule(session: Session, text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    try:
        eligibility.check(text, eligibility.segment_rules(session))
    except eligibility.RuleError as exc:
        raise CatalogueError(f"rule: {exc}") from None
    return text.strip()


def _version(session: Session, entity: str, row: Any, change: str, by: str | None) -> None:
    schema = OfferRead if entity == "offer" else PolicyRead
    data = schema.model_validate(row).model_dump(mode="json")
    session.add(
        CatalogueVersion(
            entity=entity,
            entity_id=row.id,
            version=row.version,
            change=change,
            data=data,
            changed_by=by,
            changed_at=utcnow(),
        )
    )
    sync.bump(session, catalogue=True)


def get_offer(session: Session, key: str) -> Offer:
    offer = session.scalar(select(Offer).where(Offer.key == key))
    if offer is None:
        raise OfferNotFound(f"no offer {key!r}")
    return offer


def find_offer(session: Session, ref: str | int) -> Offer | None:
    """By key, or by id when given a number."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit() and len(ref) < 19):
        return session.get(Offer, int(ref))
    return session.scalar(select(Offer).where(Offer.key == ref))


def list_offers(session: Session, include_archived: bool = False) -> list[Offer]:
    stmt = select(Offer).order_by(Offer.key)
    if not include_archived:
        stmt = stmt.where(Offer.status != "archived")
    return list(session.scalars(stmt))


def create_offer(
    session: Session, data: OfferWrite, settings: Settings, by: str | None = None
) -> Offer:
    if session.scalar(select(Offer.id).where(Offer.key == data.key)) is not None:
        raise OfferExists(f"an offer {data.key!r} exists already")
    values = data.model_dump()
    values["rule"] = _check_rule(session, values["rule"])
    defaults = {
        "max_impressions": settings.decision_max_impressions,
        "impression_window_days": settings.decision_impression_window_days,
        "reject_suppress_days": settings.decision_reject_suppress_days,
        "held_days": settings.decision_held_days,
    }
    for name, default in defaults.items():
        if name not in data.model_fields_set:
            values[name] = default
    if values["impression_window_days"] is None:
        values["impression_window_days"] = settings.decision_impression_window_days
    if values["held_days"] is None:
        values["held_days"] = settings.decision_held_days
    now = utcnow()
    offer = Offer(**values, version=1, created_at=now, updated_at=now)
    check_offer(offer_spec(offer), _channels(settings))  # no id yet; the checks need none
    session.add(offer)
    session.flush()
    _version(session, "offer", offer, "created", by)
    return offer


def update_offer(
    session: Session, key: str, changes: OfferUpdate, settings: Settings, by: str | None = None
) -> Offer:
    offer = get_offer(session, key)
    given = changes.model_dump(exclude_unset=True)
    if "rule" in given:
        given["rule"] = _check_rule(session, given["rule"])
    for required in ("name", "kind", "status", "channels", "value", "weight", "cost"):
        if required in given and given[required] is None:
            raise CatalogueError(f"{required}: must not be null")
    for name in ("impression_window_days", "held_days", "placements", "description"):
        if name in given and given[name] is None:
            raise CatalogueError(f"{name}: must not be null")
    if not given:
        return offer
    for name, value in given.items():
        setattr(offer, name, value)
    check_offer(offer_spec(offer), _channels(settings))
    offer.version += 1
    offer.updated_at = utcnow()
    session.flush()
    _version(session, "offer", offer, "archived" if offer.status == "archived" else "updated", by)
    return offer


def archive_offer(session: Session, key: str, settings: Settings, by: str | None = None) -> Offer:
    return update_offer(session, key, OfferUpdate(status="archived"), settings, by)


def offer_versions(session: Session, key: str) -> list[CatalogueVersion]:
    offer = get_offer(session, key)
    return list(
        session.scalars(
            select(CatalogueVersion)
            .where(CatalogueVersion.entity == "offer", CatalogueVersion.entity_id == offer.id)
            .order_by(CatalogueVersion.version.desc())
        )
    )


# --- contact policies ------------------------------------------------------------------------


class PolicyNotFound(LookupError):
    pass


def get_policy(session: Session, name: str) -> ContactPolicy:
    policy = session.scalar(select(ContactPolicy).where(ContactPolicy.name == name))
    if policy is None:
        raise PolicyNotFound(f"no contact policy {name!r}")
    return policy


def list_policies(session: Session) -> list[ContactPolicy]:
    return list(session.scalars(select(ContactPolicy).order_by(ContactPolicy.name)))


def create_policy(
    session: Session, data: PolicyWrite, settings: Settings, by: str | None = None
) -> ContactPolicy:
    if session.scalar(select(ContactPolicy.id).where(ContactPolicy.name == data.name)):
        raise OfferExists(f"a contact policy {data.name!r} exists already")
    values = data.model_dump()
    values["rule"] = _check_rule(session, values["rule"])
    now = utcnow()
    policy = ContactPolicy(**values, version=1, created_at=now, updated_at=now)
    check_policy(policy_spec(policy), _channels(settings))
    session.add(policy)
    session.flush()
    _version(session, "policy", policy, "created", by)
    return policy


def update_policy(
    session: Session, name: str, changes: PolicyUpdate, settings: Settings, by: str | None = None
) -> ContactPolicy:
    policy = get_policy(session, name)
    given = changes.model_dump(exclude_unset=True)
    if "rule" in given:
        given["rule"] = _check_rule(session, given["rule"])
    if given.get("channels", []) is None or ("active" in given and given["active"] is None):
        raise CatalogueError("channels and active must not be null")
    if not given:
        return policy
    for key, value in given.items():
        setattr(policy, key, value)
    check_policy(policy_spec(policy), _channels(settings))
    policy.version += 1
    policy.updated_at = utcnow()
    session.flush()
    _version(session, "policy", policy, "updated", by)
    return policy
