"""One settings object, read from ``RELATA_*`` environment variables.

Built once by :func:`get_settings` and passed on; nothing reads the environment
at import time, so tests can build their own ``Settings``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IDENTIFIER_KINDS = (
    "email",
    "phone",
    "customer_number",
    "loyalty_card",
    "anonymous_id",
)
SurvivorshipRule = Literal["trust", "recent"]
_PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CHANNEL = re.compile(r"[a-z][a-z0-9_]{0,15}")


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
    # Access control (auth/). "development" and "test" send the session cookie without
    # Secure, so that it works over plain http://; production sends it over HTTPS only.
    environment: Literal["production", "development", "test"] = "production"
    cookie_secure: bool | None = None  # None: Secure unless development or test
    session_hours: float = Field(12.0, gt=0)  # a web session ends this long after login
    # Failed logins in the window, counted in the database (so across all processes),
    # after which further attempts are answered 429 until the oldest falls out.
    login_max_failures: int = Field(5, ge=1)  # per user name
    login_max_failures_per_ip: int = Field(50, ge=1)
    login_window_seconds: int = Field(900, ge=1)
    # Each process remembers who a key or session belongs to this long (auth/cache.py):
    # a revocation made by another process takes up to this long to reach this one.
    auth_cache_seconds: float = Field(5.0, ge=0)
    # Probabilistic matching (identity/matching): match weights are log2 Bayes factors.
    # A pair at or above the first is merged; between the two it waits for review.
    match_auto_merge_weight: float = 6.0
    match_review_weight: float = 3.0
    # "duckdb" on one machine; "spark" on a cluster (needs pyspark, see architecture.md).
    match_backend: Literal["duckdb", "spark"] = "duckdb"
    # Random pairs sampled to estimate u; more is steadier and slower.
    match_u_max_pairs: float = 5_000_000
    # Comparisons whose "different" level means two people whatever else they share
    # (families share surname, address, e-mail, landline). [] turns the guard off, for
    # data without households (FEBRL).
    match_conflicts: list[Literal["forename", "dob"]] = Field(
        default_factory=lambda: ["forename", "dob"]
    )

    # Consent (consent/): what a person can agree to, on each channel (email, sms, phone,
    # post, web, push). Renaming a purpose orphans its ledger entries: add, don't rename.
    consent_purposes: list[str] = Field(
        default_factory=lambda: ["marketing", "profiling", "personalisation", "third_party_sharing"]
    )
    consent_confirm_hours: int = Field(72, ge=1)  # a double opt-in link works this long
    unsubscribe_link_days: int = Field(1095, ge=1)  # an unsubscribe link in a message
    # The permission check caches a customer's derived consent this long, in each process.
    consent_cache_seconds: float = Field(30.0, ge=0)
    consent_cache_size: int = Field(10_000, ge=0)
    # `relata retention run`: event name or type -> days kept; anything else is kept.
    retention_days: dict[str, int] = Field(default_factory=dict)
    # Keys of erasure tombstones and unsubscribe links. Unset: generated in the database on
    # first use (consent/keys.py); set them to keep them out of a database dump.
    erasure_salt: SecretStr | None = None
    token_secret: SecretStr | None = None

    # Decisions (decisions/). The channels a decision can be asked for, each with the
    # consent it needs: "purpose:consent channel" ("*": granted on any consent channel).
    decision_channels: dict[str, str] = Field(
        default_factory=lambda: {
            "web": "personalisation:web",
            "app": "personalisation:push",
            "email": "marketing:email",
            "sms": "marketing:sms",
            "push": "marketing:push",
            "phone": "marketing:phone",
            "post": "marketing:post",
            "hotline": "personalisation:phone",
            "pos": "personalisation:*",
        }
    )
    decision_control_share: float = Field(0.05, ge=0, le=1)  # random control group
    # Context cells the bandit learns in, coarse to fine: request context keys, time
    # (daypart, weekday) or customer traits (age, tier, fav).
    decision_learning_chain: list[str] = Field(
        default_factory=lambda: ["channel", "placement", "fav", "tier"]
    )
    decision_half_life_days: float = Field(30.0, ge=0)  # 0: responses never age
    decision_prior_rate: float = Field(0.05, gt=0, lt=1)
    decision_cell_strength: float = Field(20.0, gt=0)
    decision_sync_seconds: float = Field(1.0, ge=0)  # how often an engine polls for changes
    decision_fold_seconds: float = Field(1.0, ge=0)  # learning from responses; 0: off
    # Whether the server folds (uvicorn's workers in a thread; ``relata serve`` on
    # PostgreSQL in a learner process of its own, see decisions/learner.py). False: a
    # separate ``relata decisions learn`` does.
    decision_fold_in_server: bool = True
    decision_profile_ttl_seconds: float = Field(30.0, ge=0)
    decision_cache_size: int = Field(20_000, ge=0)  # customers; ≈ 5.5 KiB each (200 offers)
    # PostgreSQL: a server process listens for merges, erasures, consent changes and new
    # holdings of any process (customer_changes.py), forgets those customers at once, and
    # so need not read a cached customer's status on each decision. False: it reads it.
    decision_listen: bool = True
    decision_auto_impressions: bool = True  # what a decision returns counts as shown
    # Defaults of a new offer's limits.
    decision_max_impressions: int | None = Field(3, ge=0)
    decision_impression_window_days: int = Field(30, ge=1)
    decision_reject_suppress_days: int | None = Field(30, ge=0)
    decision_held_days: int = Field(90, ge=0)

    @field_validator("consent_purposes")
    @classmethod
    def _purpose_names(cls, purposes: list[str]) -> list[str]:
        bad = [p for p in purposes if not _PURPOSE.fullmatch(p)]
        if bad or not purposes or len(set(purposes)) != len(purposes):
            raise ValueError(
                f"consent purposes must be distinct names of a-z, 0-9 and _, got {purposes}"
            )
        return purposes

    @field_validator("decision_channels")
    @classmethod
    def _decision_channels(cls, channels: dict[str, str]) -> dict[str, str]:
        bad = {k: v for k, v in channels.items() if not _CHANNEL.fullmatch(k) or ":" not in v}
        if bad or not channels:
            raise ValueError(
                f'decision channels map a name to "purpose:consent channel", got {bad or channels}'
            )
        return channels

    @field_validator("retention_days")
    @classmethod
    def _positive_days(cls, days: dict[str, int]) -> dict[str, int]:
        if bad := {k: v for k, v in days.items() if v < 1 or not k.strip()}:
            raise ValueError(f"retention periods must be at least 1 day, got {bad}")
        return days

    @field_validator("erasure_salt", "token_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return secret

    @field_validator("strong_identifiers", "shared_identifiers")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = sorted(set(kinds) - set(IDENTIFIER_KINDS))
        if unknown:
            raise ValueError(f"unknown identifier kind(s) {unknown}; known: {IDENTIFIER_KINDS}")
        return kinds

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment == "production"

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Settings:
        if self.match_review_weight > self.match_auto_merge_weight:
            raise ValueError(
                "match_review_weight must not exceed match_auto_merge_weight "
                f"({self.match_review_weight} > {self.match_auto_merge_weight})"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
