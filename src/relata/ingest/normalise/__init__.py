"""Clean one raw record into canonical values: pure functions, no I/O.

Every normaliser takes a stripped, non-empty string and returns the canonical value or
raises `InvalidValue`. `normalise_record` decides per field whether an invalid value
rejects the whole row (quarantine) or is only dropped with a note.
"""

from relata.ingest.normalise.address import (
    normalise_country,
    normalise_house_number,
    normalise_postcode,
    normalise_street,
    split_street,
)
from relata.ingest.normalise.base import (
    CANONICAL_FIELDS,
    DROPPABLE_FIELDS,
    EARLIEST_BIRTH_YEAR,
    IDENTIFYING_FIELDS,
    InvalidValue,
    Normalised,
    fold,
    is_missing,
)
from relata.ingest.normalise.contact import normalise_email, normalise_phone
from relata.ingest.normalise.dates import normalise_birth_date, parse_date
from relata.ingest.normalise.names import normalise_name, title_case
from relata.ingest.normalise.record import normalise_gender, normalise_identifier, normalise_record

__all__ = [
    "CANONICAL_FIELDS",
    "DROPPABLE_FIELDS",
    "EARLIEST_BIRTH_YEAR",
    "IDENTIFYING_FIELDS",
    "InvalidValue",
    "Normalised",
    "fold",
    "is_missing",
    "normalise_birth_date",
    "normalise_country",
    "normalise_email",
    "normalise_gender",
    "normalise_house_number",
    "normalise_identifier",
    "normalise_name",
    "normalise_phone",
    "normalise_postcode",
    "normalise_record",
    "normalise_street",
    "parse_date",
    "split_street",
    "title_case",
]
