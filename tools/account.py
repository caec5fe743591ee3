"""Account tools: balance_get, packages_list; and the `killa://balance` resource."""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult
from pydantic import Field

from tools.gateway_client import GatewayCallError, GatewayClient, usd
from tools.results import Result
from tools.toolkit import READ_ONLY, Arguments, flat_tool, gateway_of


class NoArguments(Arguments):
    pass


class Balance(Result):
    usd_available_micros: int = Field(
        description="What you can spend now, in USD micros (1 USD = 1,000,000)."
    )
    usd_available: str
    usd_held_micros: int = Field(description="Set aside for jobs still queued or running.")
    usd_held: str
    usd_balance_micros: int = Field(description="Available plus held.")
    usd_balance: str

    @classmethod
    def from_gateway(cls, body: dict[str, Any]) -> Balance:
        available, held, total = (
            body["usdAvailableMicros"],
            body["usdHeldMicros"],
            body["usdBalanceMicros"],
        )
        return cls(
            usd_available_micros=available,
            usd_available=usd(available),
            usd_held_micros=held,
            usd_held=usd(held),
            usd_balance_micros=total,
            usd_balance=usd(total),
        )


class CreditPackage(Result):
    code: str
    name: str
    description: str
    price: str = Field(description="What the package costs, in dollars.")
    credit: str = Field(description="What lands on the balance, bonus included.")
    price_micros: int
    credit_micros: int


class Packages(Result):
    packages: list[CreditPackage]
    catalog_url: str = Field(description="The same catalog on the gateway.")


async def balance_get(arguments: NoArguments, ctx: Context) -> Annotated[CallToolResult, Balance]:
    return Balance.from_gateway(await gateway_of(ctx).balance()).call_result()


async def packages_list(
    arguments: NoArguments, ctx: Context
) -> Annotated[CallToolResult, Packages]:
    gateway = gateway_of(ctx)
    body = await gateway.packages()
    return Packages(
        packages=[
            CreditPackage(
                code=item["code"],
                name=item["name"],
                description=item["description"],
                price=usd(item["priceMicros"]),
                credit=usd(item["creditMicros"]),
                price_micros=item["priceMicros"],
                credit_micros=item["creditMicros"],
            )
            for item in body["packages"]
        ],
        catalog_url=gateway.url("/api/v1/packages"),
    ).call_result()


def tools() -> list[Tool]:
    return [
        flat_tool(
            balance_get,
            name="balance_get",
            title="Get the balance",
            description="Your prepaid USD balance: available to spend, held for running jobs. "
            "Free.",
            annotations=READ_ONLY,
        ),
        flat_tool(
            packages_list,
            name="packages_list",
            title="List credit packages",
            description="The credit packages on sale (price, credit, bonus): what to suggest "
            "when the balance is too low. Free.",
            annotations=READ_ONLY,
        ),
    ]


def add_resources(server: MCPServer[Any], gateway: GatewayClient) -> None:
    # The SDK gives a static resource no request context, so this one holds the gateway itself:
    # the same client the server lifespan opens and the tools read through ctx.
    @server.resource(
        "killa://balance",
        name="balance",
        title="Balance",
        description="The account's balance (the balance_get result), as JSON.",
        mime_type="application/json",
    )
    async def balance_resource() -> str:
        try:
            body = await gateway.balance()
        except GatewayCallError as exc:
            raise ResourceError(str(exc)) from exc
        return json.dumps(Balance.from_gateway(body).model_dump(mode="json", by_alias=True))
