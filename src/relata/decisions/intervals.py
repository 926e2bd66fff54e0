"""Confidence intervals for rates and their differences. Pure.

Wilson's score interval for a proportion, and Newcombe's hybrid score interval for the
difference of two independent proportions (Newcombe 1998, method 10): both keep their
coverage with small counts and rates near 0, where the textbook p ± z·se does not.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float, float] | None:
    """(estimate, low, high) of k successes in n trials; None without trials."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def difference(
    k1: float, n1: float, k2: float, n2: float, z: float = Z95
) -> tuple[float, float, float] | None:
    """(p1 − p2, low, high); None unless both groups have trials."""
    a, b = wilson(k1, n1, z), wilson(k2, n2, z)
    if a is None or b is None:
        return None
    (p1, l1, u1), (p2, l2, u2) = a, b
    d = p1 - p2
    return (
        d,
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )
