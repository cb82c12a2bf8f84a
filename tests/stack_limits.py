"""Per-user limits for test stacks that share users across hundreds of uploads.

The defaults (docs/limits.md) would bind long before such a suite ends; the tests of the limits
themselves set tight per-user overrides in the registry instead, which is also how an operator
sets them (tests/integration/test_limits_http.py).
"""

GENEROUS_LIMITS = {
    "MaxConcurrentUploads": "100000",
    "DefaultUserQuotaBytes": str(1 << 50),
    "MaxRequestsPerMinute": "100000",
}
