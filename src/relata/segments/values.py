"""How both compilers read values, decided once so that SQL and Python agree.

- A missing value (NULL, a missing JSON key, JSON null, or the empty text "") makes
  every comparison false, ``!=`` and ``not in`` included; ``not (…)`` of such a
  comparison is true. ``is empty`` / ``is set`` ask for presence.
- Text compares exactly, case-sensitive, by code point (PostgreSQL compares with
  collation "C" for that), so "Müller" ≠ "müller" and "B" < "a".
- Event properties are JSON: a condition compares a property with a text only if it
  is a JSON string, with a number only if it is a JSON number (as a double), with
  true/false only if it is a JSON boolean.
- Sums are exact: amounts are summed in cents (quantities in thousandths); a property
  counts to a sum rounded to hundredths (half away from zero), and only while its
  magnitude is below 10^12. The sum over no rows is 0; min and max over no rows are
  missing.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

# Scale of the Numeric columns that can be summed: Numeric(14, 2) and Numeric(14, 3).
COLUMN_SCALE = {"amount": 100, "quantity": 1000}
PROPERTY_SCALE = 100
PROPERTY_LIMIT = 1e12


def sum_scale(path: str) -> int:
    """The units a sum of this field is kept in."""
    return PROPERTY_SCALE if path.startswith("properties.") else COLUMN_SCALE[path]


def present_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def json_number(value: Any) -> float | None:
    """A JSON number as the double SQL reads; anything else is not a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def property_units(value: Any) -> int | None:
    """A property's contribution to a sum, in hundredths (see the module's note)."""
    number = json_number(value)
    if number is None or not abs(number) < PROPERTY_LIMIT:
        return None
    return math.trunc(number * PROPERTY_SCALE + (-0.5 if number < 0 else 0.5))


def column_units(value: Decimal | None, scale: int) -> int | None:
    if value is None:
        return None
    return int((value * scale).to_integral_value(ROUND_HALF_UP))
