"""What the consent and GDPR services refuse, and why; the API maps each to a status."""

from __future__ import annotations


class ConsentError(ValueError):
    """Input the consent services cannot use (unknown purpose or channel, bad value): 422."""


class CustomerNotFound(ConsentError):
    """No customer with that id: 404."""


class CustomerErased(ConsentError):
    """The customer was erased (Art. 17); nothing about them is left to show or change: 410."""


class CustomerMerged(ConsentError):
    """A destructive request named a merged-away id: the survivor holds the data: 409."""

    def __init__(self, customer_id: int, survivor_id: int) -> None:
        super().__init__(
            f"customer {customer_id} was merged into {survivor_id}, which holds its data; "
            f"use {survivor_id}"
        )
        self.survivor_id = survivor_id


class EntryNotFound(ConsentError):
    """No consent entry of that id for that customer: 404 (another customer's is not shown)."""


class TokenInvalid(ConsentError):
    """A token that is malformed, forged or unknown: 404, and nothing about anyone."""


class TokenGone(ConsentError):
    """A genuine token that no longer works: expired, or a confirmation used already: 410."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"this link {'has expired' if reason == 'expired' else 'was used already'}"
        )
        self.reason = reason  # "expired" | "used"


class SecretMismatch(RuntimeError):
    """The configured key differs from the one this database's data was made with."""
