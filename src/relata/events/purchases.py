"""What a purchase or contract event means for the customer's holdings. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

ORDER_COMPLETED = "Order Completed"
CONTRACT_SIGNED = "Contract Signed"
CONTRACT_CANCELLED = "Contract Cancelled"
HOLDING_EVENTS = (ORDER_COMPLETED, CONTRACT_SIGNED, CONTRACT_CANCELLED)


class InvalidProperty(ValueError):
    """``path`` names the property that is wrong, e.g. ``products.0.price``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True, slots=True)
class HoldingSpec:
    kind: str  # purchase | contract
    reference: str
    line: str
    product_id: str | None
    product_name: str | None
    category: str | None
    quantity: Decimal | None
    amount: Decimal | None
    currency: str | None
    status: str
    started_at: datetime | None  # None: the event's own time
    ended_at: datetime | None = None


def _text(props: dict[str, Any], key: str, path: str, required: bool = False) -> str | None:
    value = props.get(key)
    if value is None or value == "":
        if required:
            raise InvalidProperty(path, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidProperty(path, "must be a string")
    return str(value)[:300]


def _number(props: dict[str, Any], key: str, path: str) -> Decimal | None:
    value = props.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidProperty(path, "must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidProperty(path, f"must be a number, got {value!r}") from None
    if not number.is_finite() or abs(number) >= Decimal("1e12"):
        raise InvalidProperty(path, f"is out of range: {value!r}")
    return number


def _currency(props: dict[str, Any]) -> str | None:
    value = _text(props, "currency", "currency")
    if value is None:
        return None
    if len(value) != 3 or not value.isalpha():
        raise InvalidProperty("currency", f"must be an ISO 4217 code like EUR, got {value!r}")
    return value.upper()


def _date(props: dict[str, Any], key: str) -> datetime | None:
    value = _text(props, key, key)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidProperty(key, f"must be an ISO date, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def holdings_from(event: str, props: dict[str, Any]) -> list[HoldingSpec]:
    """The holdings an event creates or ends; raises InvalidProperty on bad input."""
    if event == ORDER_COMPLETED:
        return _order(props)
    if event == CONTRACT_SIGNED:
        return [_contract(props)]
    if event == CONTRACT_CANCELLED:
        reference = _text(props, "contract_id", "contract_id", required=True)
        assert reference is not None
        end = _date(props, "end_date")
        return [
            HoldingSpec(
                "contract", reference, "", None, None, None, None, None, None, "ended", None, end
            )
        ]
    return []


def _order(props: dict[str, Any]) -> list[HoldingSpec]:
    order_id = _text(props, "order_id", "order_id", required=True)
    assert order_id is not None
    currency = _currency(props)
    products = props.get("products") or []
    if not isinstance(products, list):
        raise InvalidProperty("products", "must be a list of products")
    if not products:
        total = _number(props, "total", "total")
        if total is None:
            total = _number(props, "revenue", "revenue")
        return [
            HoldingSpec(
                "purchase",
                order_id,
                "0",
                None,
                None,
                None,
                None,
                total,
                currency,
                "completed",
                None,
            )
        ]
    specs = []
    for i, item in enumerate(products):
        path = f"products.{i}"
        if not isinstance(item, dict):
            raise InvalidProperty(path, "must be an object")
        quantity = _number(item, "quantity", f"{path}.quantity") or Decimal(1)
        price = _number(item, "price", f"{path}.price")
        specs.append(
            HoldingSpec(
                kind="purchase",
                reference=order_id,
                line=str(i),
                product_id=_text(item, "product_id", f"{path}.product_id")
                or _text(item, "sku", f"{path}.sku"),
                product_name=_text(item, "name", f"{path}.name"),
                category=_text(item, "category", f"{path}.category"),
                quantity=quantity,
                amount=None if price is None else price * quantity,
                currency=currency,
                status="completed",
                started_at=None,
            )
        )
    return specs


def _contract(props: dict[str, Any]) -> HoldingSpec:
    reference = _text(props, "contract_id", "contract_id", required=True)
    assert reference is not None
    return HoldingSpec(
        kind="contract",
        reference=reference,
        line="",
        product_id=_text(props, "product_id", "product_id"),
        product_name=_text(props, "product_name", "product_name") or _text(props, "name", "name"),
        category=_text(props, "category", "category"),
        quantity=None,
        amount=_number(props, "amount", "amount"),
        currency=_currency(props),
        status="active",
        started_at=_date(props, "start_date"),
        ended_at=_date(props, "end_date"),
    )
