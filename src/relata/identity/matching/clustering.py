"""From scored pairs to groups of customers to merge, without chaining strangers. Pure.

Plain connected components at a threshold chain people: A looks like B, B like C, so A,
B and C become one customer although A and C have nothing in common (a father, a
hotline record with only his name and landline, and his son). Here two groups join only
when every pair across them scores at least the review threshold (complete linkage at
the floor), so one strong link never pulls in someone who is clearly someone else; and
never when a person rejected any pair across them. A link that would join groups but may
not goes to the review queue instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MAX_CLUSTER = 50  # a bigger group is a hub (a placeholder, a shop's own address): review it


@dataclass(frozen=True, slots=True)
class Pair:
    a: int  # a < b
    b: int
    weight: float
    conflict: bool = False


@dataclass
class Clustering:
    clusters: list[list[int]] = field(default_factory=list)  # each sorted, survivor first
    merges: list[Pair] = field(default_factory=list)  # survivor, merged, the joining weight
    review: list[Pair] = field(default_factory=list)
    held_back: int = 0  # auto-merge links the guard refused


def cluster(
    pairs: Iterable[Pair],
    auto: float,
    floor: float,
    weight_of: Callable[[int, int], tuple[float, bool]],
    rejected: Callable[[int, int], bool] = lambda a, b: False,
    max_size: int = MAX_CLUSTER,
) -> Clustering:
    """``pairs`` at or above ``floor``; ``weight_of(a, b)`` scores a pair not among them
    (its weight and whether it is in conflict)."""
    ordered = sorted(pairs, key=lambda p: (-p.weight, p.a, p.b))
    known = {(p.a, p.b): (p.weight, p.conflict) for p in ordered}
    members: dict[int, list[int]] = {}
    root: dict[int, int] = {}
    joined_by: dict[int, float] = {}
    result = Clustering()

    def find(x: int) -> int:
        while root.get(x, x) != x:
            x = root[x]
        return x

    def same_person(x: int, y: int) -> bool:
        key = (x, y) if x < y else (y, x)
        if key not in known:
            known[key] = weight_of(*key)
        weight, conflict = known[key]
        return weight >= floor and not conflict and not rejected(*key)

    def may_join(ga: list[int], gb: list[int]) -> bool:
        if len(ga) + len(gb) > max_size:
            return False
        return all(same_person(x, y) for x in ga for y in gb)

    for p in ordered:
        if p.weight < auto:
            break
        if p.conflict:
            continue
        ra, rb = find(p.a), find(p.b)
        if ra == rb:
            continue
        ga, gb = members.get(ra, [ra]), members.get(rb, [rb])
        if not may_join(ga, gb):
            result.held_back += 1
            continue
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        root[gone] = keep
        members[keep] = sorted(ga + gb)
        members.pop(gone, None)
        for x in members[keep]:
            if x != keep:
                joined_by.setdefault(x, p.weight)
    for survivor, group in sorted(members.items()):
        result.clusters.append(group)
        result.merges.extend(Pair(survivor, x, joined_by[x]) for x in group if x != survivor)
    for p in ordered:
        if find(p.a) != find(p.b) and not p.conflict and not rejected(p.a, p.b):
            result.review.append(p)
    return result
