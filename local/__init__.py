"""The local stack: template.yaml read as the single source of truth, an embedded S3 (MiniStack),
function workers that run the real handlers like Lambda containers, and an HTTP gateway that
serves the template's routes with API Gateway HTTP API (payload 2.0) semantics.

Its JWT authorizer verifies tokens like API Gateway's, against the JWKS of a local key
(local/tokens.py): only tokens from `make token` (or ``LocalStack.token_for``) are accepted.
"""
