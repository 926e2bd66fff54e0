"""Imports every domain's tables so that the metadata is complete."""

from relata.auth.models import ApiKey, AuditEntry, LoginAttempt, User, WebSession
from relata.consent.models import ConsentEntry, ConsentToken, ErasureTombstone, InstanceSecret
from relata.decisions.models import (
    CatalogueVersion,
    ContactPolicy,
    Decision,
    DecisionModel,
    DecisionOutcome,
    DecisionResponse,
    DecisionStat,
    DecisionState,
    DecisionUsage,
    Offer,
)
from relata.events.models import Event
from relata.identity.matching.models import MatchKey, MatchModel, MatchRejection, MatchReview
from relata.identity.models import Identifier, Merge
from relata.ingest.models import QuarantineEntry, Source, SourceRecord
from relata.profiles.models import Customer, Holding
from relata.segments.models import Segment, SegmentMembership, SegmentVersion

__all__ = [
    "ApiKey",
    "AuditEntry",
    "CatalogueVersion",
    "ConsentEntry",
    "ConsentToken",
    "ContactPolicy",
    "Customer",
    "Decision",
    "DecisionModel",
    "DecisionOutcome",
    "DecisionResponse",
    "DecisionStat",
    "DecisionState",
    "DecisionUsage",
    "ErasureTombstone",
    "Event",
    "Holding",
    "Identifier",
    "InstanceSecret",
    "LoginAttempt",
    "MatchKey",
    "MatchModel",
    "MatchRejection",
    "MatchReview",
    "Merge",
    "Offer",
    "QuarantineEntry",
    "Segment",
    "SegmentMembership",
    "SegmentVersion",
    "Source",
    "SourceRecord",
    "User",
    "WebSession",
]
