"""A short reason for each chosen offer, from the largest parts of its score. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from relata.decisions.catalogue import OfferSpec

# A part must move the log-odds at least this much to be worth mentioning.
NOTABLE = 0.15


def reason(
    offer: OfferSpec,
    parts: Mapping[str, float],
    context_label: str,
    control: bool = False,
) -> str:
    """One line: what speaks for the offer, then its value lever."""
    if control:
        return "random control group (measures the uplift of decisioning)"
    if offer.is_nothing:
        return f"no offer is worth more than {offer.value * offer.weight:g} here"
    said = []
    if parts.get("own", 0.0) >= NOTABLE and offer.category:
        said.append(f"often buys {offer.category}")
    if parts.get("similar", 0.0) >= NOTABLE:
        said.append("popular with similar customers")
    if parts.get("history", 0.0) >= NOTABLE:
        said.append("responded to such offers before")
    if parts.get("context", 0.0) >= NOTABLE and context_label:
        said.append(f"does well for {context_label.replace('|', ', ')}")
    if parts.get("exploration", 0.0) >= 2 * NOTABLE:
        said.append("little known yet: exploring")
    if not said:
        said.append("highest expected value")
    lever = f"value {offer.value:g}" + (f" × weight {offer.weight:g}" if offer.weight != 1 else "")
    return "; ".join(said) + f" ({lever})"


def rounded(parts: Mapping[str, float], digits: int = 4) -> dict[str, float]:
    return {k: round(float(v), digits) for k, v in parts.items()}
