"""Imports every domain's tables so that the metadata is complete."""

from relata.events.models import Event
from relata.identity.models import Identifier, Merge
from relata.ingest.models import QuarantineEntry, Source, SourceRecord
from relata.profiles.models import Customer, Holding

__all__ = [
    "Customer",
    "Event",
    "Holding",
    "Identifier",
    "Merge",
    "QuarantineEntry",
    "Source",
    "SourceRecord",
]
