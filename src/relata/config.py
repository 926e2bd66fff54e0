"""One settings object, read from ``RELATA_*`` environment variables.

Built once by :func:`get_settings` and passed on; nothing reads the environment
at import time, so tests can build their own ``Settings``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IDENTIFIER_KINDS = (
    "email",
    "phone",
    "customer_number",
    "loyalty_card",
    "anonymous_id",
)
SurvivorshipRule = Literal["trust", "recent"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELATA_", extra="ignore")

    database_url: str = "sqlite:///relata.db"
    # Identifier kinds strong enough to link two records to one customer.
    strong_identifiers: list[str] = Field(
        default_factory=lambda: [
            "email",
            "phone",
            "customer_number",
            "loyalty_card",
            "anonymous_id",
        ]
    )
    # Strong kinds that households share (a family e-mail address): they link only
    # when the two people do not clearly differ in first name or birth date.
    shared_identifiers: list[str] = Field(default_factory=lambda: ["email", "phone"])
    # Per-field survivorship overrides; the default for every field is "trust"
    # (highest source trust, then most recent).
    survivorship: dict[str, SurvivorshipRule] = Field(default_factory=dict)
    default_region: str = "DE"
    import_batch_size: int = 2000
    timeline_page_size: int = 50

    @field_validator("strong_identifiers", "shared_identifiers")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = sorted(set(kinds) - set(IDENTIFIER_KINDS))
        if unknown:
            raise ValueError(f"unknown identifier kind(s) {unknown}; known: {IDENTIFIER_KINDS}")
        return kinds


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
