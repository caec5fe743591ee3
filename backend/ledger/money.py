"""USD amounts are integer micros (1 USD = 1_000_000) everywhere; strings exist only at the edge."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICROS_PER_USD = 1_000_000
MICROS_PER_CENT = 10_000


def format_usd(micros: int) -> str:
    """`1234567` -> `"1.234567"`; always six decimals so clients never see float noise."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    return f"{sign}{whole}.{frac:06d}"


def format_usd_display(micros: int) -> str:
    """Human form for messages: `"$0.40"` (cents, rounded half up)."""
    cents = (Decimal(micros) / MICROS_PER_CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"${cents / 100:.2f}" if cents >= 0 else f"-${-cents / 100:.2f}"


def parse_usd(text: str) -> int:
    """`"12.5"` -> `12_500_000`. Rejects anything that is not a plain decimal with ≤ 6 places."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a USD amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a USD amount: {text!r}")
    micros = value * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise ValueError(f"USD amounts have at most 6 decimal places: {text!r}")
    return int(micros)
