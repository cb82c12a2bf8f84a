"""HTTP adapters shared by the API functions: error mapping, the caller's identity, request bodies, body models."""
