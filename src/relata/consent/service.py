"""Consent: what other parts of relata call. One door to the domain's modules.

- ``store``: ``record`` grants and revocations, read the ledger, and the permission check
  ``may_use`` (cached per process, see ``cache``);
- ``links``: double opt-in (``request_opt_in``, ``confirm``) and unsubscribe links;
- ``imported``: ``record_from_import`` for consent columns of imported files;
- ``erasure``: ``erased`` / ``erasure_keys``, the tombstone lookup before linking records.
"""

from __future__ import annotations

from relata.consent.erasure import erased, erasure_keys
from relata.consent.imported import ImportedConsent, record_from_import
from relata.consent.links import (
    OptIn,
    confirm,
    read_unsubscribe_token,
    request_opt_in,
    unsubscribe,
    unsubscribe_token,
)
from relata.consent.store import (
    active_customer,
    check_key,
    entries,
    entry,
    matrix,
    may_use,
    prime,
    record,
    state_of,
    states,
)

__all__ = [
    "ImportedConsent",
    "OptIn",
    "active_customer",
    "check_key",
    "confirm",
    "entries",
    "entry",
    "erased",
    "erasure_keys",
    "matrix",
    "may_use",
    "prime",
    "read_unsubscribe_token",
    "record",
    "record_from_import",
    "request_opt_in",
    "state_of",
    "states",
    "unsubscribe",
    "unsubscribe_token",
]
