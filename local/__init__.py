"""The local stack: template.yaml read as the single source of truth, an embedded S3 (MiniStack),
function workers that run the real handlers like Lambda containers, and an HTTP gateway that
serves the template's routes with API Gateway HTTP API (payload 2.0) semantics.

Local only: the JWT authorizer emulation does not check token signatures.
"""
