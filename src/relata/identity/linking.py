"""Deterministic linking: which customer each incoming record belongs to. Pure, no I/O.

A record joins the customer that owns one of its strong identifiers; when its
identifiers point at several customers, those are merged. Identifiers that
households share (a family e-mail) only link people who do not clearly differ:
two different first names or two different birth dates keep them apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz.distance import JaroWinkler

from relata.ingest.normalise import fold

Key = tuple[str, str]  # (kind, value)
HUB_SIZE = 3
# Existing customers are positive ids; customers to be created are negative refs.
Ref = int


# "familie.mueller@…", "fam-schulz@…", "family.smith@…": written to be shared.
_HOUSEHOLD = re.compile(r"^(?:.*famil|fam[._-]|.*haushalt|.*household)", re.IGNORECASE)


def household_address(kind: str, value: str) -> bool:
    return kind == "email" and bool(_HOUSEHOLD.match(value.partition("@")[0]))


@dataclass(frozen=True, slots=True)
class Person:
    first_name: str | None = None
    last_name: str | None = None
    birth_date: str | None = None

    def filled_from(self, other: Person) -> Person:
        return Person(
            self.first_name or other.first_name,
            self.last_name or other.last_name,
            self.birth_date or other.birth_date,
        )


def _same_name(a: str, b: str) -> bool:
    if a == b or (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b)):
        return True
    # Double names: "anna maria" and "anna" are one person.
    if set(a.split()) & set(b.split()):
        return True
    return JaroWinkler.similarity(a, b) >= 0.88


def _dates_compatible(a: str, b: str) -> bool:
    if a == b:
        return True
    ya, ma, da = a.split("-")
    yb, mb, db = b.split("-")
    return ya == yb and ma == db and da == mb  # day and month swapped on entry


def compatible(a: Person, b: Person) -> bool:
    """False when the two are clearly different people."""
    if a.birth_date and b.birth_date and not _dates_compatible(a.birth_date, b.birth_date):
        return False
    if a.first_name and b.first_name:
        fa, fb = fold(a.first_name), fold(b.first_name)
        if fa and fb and not _same_name(fa, fb):
            # First and last name swapped between the two records.
            swapped = a.last_name and b.last_name and fold(a.last_name) == fb
            return bool(swapped and fold(b.last_name) == fa)
    return True


@dataclass(slots=True)
class LinkItem:
    current: Ref | None  # the customer the record belongs to already, if any
    identifiers: list[Key]
    person: Person


@dataclass(slots=True)
class Plan:
    assign: list[Ref] = field(default_factory=list)  # final customer ref per item
    new: list[Ref] = field(default_factory=list)  # refs of customers to create
    merges: list[tuple[Ref, Ref, str]] = field(default_factory=list)  # survivor, merged, why


class _Linker:
    def __init__(
        self,
        owners: Mapping[Key, Iterable[Ref]],
        persons: Mapping[Ref, Person],
        strong: set[str],
        shared: set[str],
        rank: Callable[[Ref], Hashable],
    ) -> None:
        self.owners = {k: set(v) for k, v in owners.items()}
        self.persons = dict(persons)
        self.strong, self.shared, self.rank = strong, shared, rank
        self.parent: dict[Ref, Ref] = {}
        self.next_ref = -1
        self.merges: list[tuple[Ref, Ref, str]] = []

    def find(self, ref: Ref) -> Ref:
        root = ref
        while root in self.parent:
            root = self.parent[root]
        while ref != root:
            self.parent[ref], ref = root, self.parent[ref]
        return root

    def person(self, ref: Ref) -> Person:
        return self.persons.get(ref, Person())

    def candidates(self, item: LinkItem) -> tuple[list[Ref], list[Ref], dict[Ref, str]]:
        exclusive: list[Ref] = [self.find(item.current)] if item.current is not None else []
        shared: list[Ref] = []
        why: dict[Ref, str] = {}
        for kind, value in item.identifiers:
            if kind not in self.strong:
                continue
            owners = self.owners.get((kind, value), ())
            if kind in self.shared and len(owners) >= HUB_SIZE:
                # A value that three customers already share is a household's landline, a
                # switchboard or a placeholder: it says nothing about who this is.
                continue
            for ref in owners:
                root = self.find(ref)
                why.setdefault(root, f"{kind}={value}")
                if kind not in self.shared:
                    exclusive.append(root)
                elif household_address(kind, value) and not (
                    item.person.first_name and self.person(root).first_name
                ):
                    # A family's address says nothing about which of them this is.
                    continue
                elif compatible(item.person, self.person(root)):
                    shared.append(root)
        return list(dict.fromkeys(exclusive)), list(dict.fromkeys(shared)), why

    def choose(self, item: LinkItem) -> tuple[list[Ref], dict[Ref, str]]:
        exclusive, shared, why = self.candidates(item)
        if exclusive:
            anchor = self.person_of_group(exclusive)
            extra = [r for r in shared if r not in exclusive and compatible(anchor, self.person(r))]
            return exclusive + extra, why
        # Linked by shared identifiers only: an ambiguous match (the family address of
        # two clearly different people) links to no one rather than to the wrong one.
        for i, a in enumerate(shared):
            for b in shared[i + 1 :]:
                if not compatible(self.person(a), self.person(b)):
                    return [], why
        return shared, why

    def person_of_group(self, refs: list[Ref]) -> Person:
        person = Person()
        for ref in refs:
            person = person.filled_from(self.person(ref))
        return person

    def union(self, refs: list[Ref], why: dict[Ref, str]) -> Ref:
        survivor = min(refs, key=self.rank)
        for ref in refs:
            if ref == survivor:
                continue
            self.parent[ref] = survivor
            self.persons[survivor] = self.person(survivor).filled_from(self.person(ref))
            if survivor > 0 and ref > 0:
                self.merges.append((survivor, ref, why.get(ref, "shared identifier")))
        return survivor

    def link(self, item: LinkItem) -> Ref:
        refs, why = self.choose(item)
        if refs:
            ref = self.union(refs, why)
        else:
            ref, self.next_ref = self.next_ref, self.next_ref - 1
        self.persons[ref] = self.person(ref).filled_from(item.person)
        for key in item.identifiers:
            if key[0] in self.strong:
                self.owners.setdefault(key, set()).add(ref)
        return ref


def plan_links(
    items: list[LinkItem],
    owners: Mapping[Key, Iterable[Ref]],
    persons: Mapping[Ref, Person],
    strong: Iterable[str],
    shared: Iterable[str],
    rank: Callable[[Ref], Hashable] | None = None,
) -> Plan:
    """Decide, in order, which customer every item joins and which customers merge.

    ``owners`` maps strong identifiers to the existing customers holding them;
    ``persons`` gives those customers' names and birth dates; ``rank`` orders
    survivors (smaller wins; by default the oldest existing customer).
    """

    def default_rank(ref: Ref) -> Hashable:
        return (ref < 0, abs(ref))

    linker = _Linker(owners, persons, set(strong), set(shared), rank or default_rank)
    provisional = [linker.link(item) for item in items]
    plan = Plan(merges=linker.merges)
    plan.assign = [linker.find(ref) for ref in provisional]
    plan.new = sorted({ref for ref in plan.assign if ref < 0}, reverse=True)
    return plan
