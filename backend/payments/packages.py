"""The credit packages catalog, read from one data file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from backend.ledger.money import format_usd

CATALOG_FILE = Path(__file__).with_name("packages.json")


@dataclass(frozen=True)
class CreditPackage:
    code: str
    name: str
    price_micros: int
    credit_micros: int
    description: str

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "description": self.description,
            "priceMicros": self.price_micros,
            "price": format_usd(self.price_micros),
            "creditMicros": self.credit_micros,
            "credit": format_usd(self.credit_micros),
            "bonusMicros": self.credit_micros - self.price_micros,
        }


@cache
def credit_packages() -> tuple[CreditPackage, ...]:
    data = json.loads(CATALOG_FILE.read_text())
    return tuple(
        CreditPackage(
            code=item["code"],
            name=item["name"],
            price_micros=int(item["priceMicros"]),
            credit_micros=int(item["creditMicros"]),
            description=item["description"],
        )
        for item in data["packages"]
    )
