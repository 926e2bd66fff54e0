"""What the segments API reads and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RuleIn(BaseModel):
    """A rule in one of its two forms: ``rule`` (text) or ``rule_json``."""

    model_config = ConfigDict(extra="forbid")

    rule: str | None = Field(None, max_length=20_000, description="the text form")
    rule_json: Any = Field(None, description="the JSON form")

    @model_validator(mode="after")
    def _one_form(self) -> RuleIn:
        if (self.rule is None) == (self.rule_json is None):
            raise ValueError("give the rule either as text (rule) or as JSON (rule_json)")
        return self


class SegmentCreate(RuleIn):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field("", max_length=500)


class SegmentUpdate(BaseModel):
    """A new version: a new rule, a new description, or both."""

    model_config = ConfigDict(extra="forbid")

    rule: str | None = Field(None, max_length=20_000)
    rule_json: Any = None
    description: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _something(self) -> SegmentUpdate:
        if self.rule is not None and self.rule_json is not None:
            raise ValueError("give the rule either as text (rule) or as JSON (rule_json)")
        if self.rule is None and self.rule_json is None and self.description is None:
            raise ValueError("nothing to change: give rule, rule_json or description")
        return self


class SegmentRead(BaseModel):
    name: str
    description: str
    version: int
    rule: str
    rule_json: Any
    members: int = Field(description="open memberships (last refresh and live re-evaluation)")
    created_at: datetime
    updated_at: datetime
    refreshed_at: datetime | None


class VersionRead(BaseModel):
    version: int
    rule: str
    rule_json: Any
    description: str
    created_at: datetime


class RuleRead(BaseModel):
    """A checked rule in both forms, and how many customers it selects now."""

    rule: str
    rule_json: Any
    count: int | None = None


class CountRead(BaseModel):
    count: int


class MembersRead(BaseModel):
    members: list[int] = Field(description="customer ids, ascending")
    next_after: int | None = Field(description="pass as ?after= for the next page")


class RefreshRead(BaseModel):
    segment: str
    members: int
    entered: int
    left: int
