"""The local stack's registry, for tests that arrange or check its items directly."""

from __future__ import annotations

from local.stack import LocalStack
from upload_core.registry import Registry, UsageDefaults


def registry_of(stack: LocalStack) -> Registry:
    table = stack.template.function("UploadsFunction", stack.resource_values, stack.parameter_overrides).environment[
        "REGISTRY_TABLE"
    ]
    # Defaults only matter for reading usage of owners without an override.
    return Registry(table, UsageDefaults(quota_bytes=1 << 50, max_uploads=100_000), client=stack.dynamodb_client())
