"""The template's DynamoDB tables, created from their definitions in template.yaml (in the
embedded emulator locally, in moto for unit tests), so neither can drift from what `sam deploy`
creates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REGISTRY_RESOURCE = "RegistryTable"
# What CreateTable takes; the rest (PITR, SSE, policies) are separate calls or AWS-only.
_CREATE_TABLE_PROPERTIES = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")


def create_table_request(properties: Mapping[str, Any], table_name: str) -> dict[str, Any]:
    request = {name: properties[name] for name in _CREATE_TABLE_PROPERTIES if name in properties}
    return {"TableName": table_name, **request}


def create_table(client: Any, properties: Mapping[str, Any], table_name: str) -> None:
    """Create the table (and its TTL setting) unless it exists: safe to run again."""
    if table_name not in client.list_tables().get("TableNames", []):
        client.create_table(**create_table_request(properties, table_name))
        client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)


def create_registry_table(client: Any, template: Mapping[str, Any], table_name: str) -> None:
    create_table(client, template["Resources"][REGISTRY_RESOURCE]["Properties"], table_name)
