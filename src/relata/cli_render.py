"""The 360° view as text for the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from relata.profiles.schemas import CustomerView
from relata.profiles.survivorship import GOLDEN_FIELDS


def render_view(console: Console, view: CustomerView) -> None:
    c = view.customer
    name = " ".join(p for p in (c.first_name, c.last_name) if p) or "(anonymous visitor)"
    age = f", {c.age} years" if c.age is not None else ""
    console.print(f"[bold]{name}[/bold]  customer {c.id}{age}", highlight=False)

    profile = Table("field", "value", "source", "since", title="Golden record")
    for field in GOLDEN_FIELDS:
        value = getattr(c, field)
        if value in (None, ""):
            continue
        prov = c.provenance.get(field)
        profile.add_row(
            field,
            str(value),
            f"{prov.source}:{prov.source_key}" if prov else "",
            prov.at.strftime("%Y-%m-%d %H:%M") if prov else "",
        )
    console.print(profile)

    ids = Table("kind", "value", "seen in", title="Identifiers")
    for ident in view.identifiers:
        ids.add_row(ident.kind, ident.value, ", ".join(ident.sources))
    console.print(ids)

    if view.holdings.items:
        holdings = Table("when", "kind", "product", "category", "amount", title="Holdings")
        for h in view.holdings.items:
            amount = f"{h.amount} {h.currency or ''}" if h.amount is not None else ""
            holdings.add_row(
                h.started_at.strftime("%Y-%m-%d"),
                h.kind,
                h.product_name or h.product_id or "",
                h.category or "",
                amount,
            )
        console.print(holdings)

    timeline = Table("when", "type", "event", "source", title="Timeline (newest first)")
    for e in view.timeline.events:
        timeline.add_row(e.occurred_at.strftime("%Y-%m-%d %H:%M"), e.type, e.name or "", e.source)
    console.print(timeline)
