"""The local identity provider: RS256 tokens signed with a local key, and the JWKS that verifies them.

The key is generated once into .local-data/ (gitignored) and reused, so `make token` in another
terminal signs tokens that a running `make dev` accepts. Tokens name the local issuer, which the
local authorizer requires; a real API Gateway trusts its own issuer only, so these tokens work
against the local stack and nowhere else.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.template import REPO_ROOT

LOCAL_ISSUER = "https://issuer.local.invalid/"
DEFAULT_KEY_PATH = REPO_ROOT / ".local-data" / "jwt-signing-key.pem"
DEFAULT_LIFETIME_SECONDS = 24 * 3600
ALGORITHM = "RS256"


class SigningKey:
    """An RSA key and its key id; ``jwks`` is the public half as API Gateway fetches it."""

    def __init__(self, private_key: rsa.RSAPrivateKey, key_id: str = "local-1") -> None:
        self.private_key = private_key
        self.key_id = key_id

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def at(cls, path: Path) -> SigningKey:
        """The key stored at ``path``, created first if missing (safe when processes race)."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = cls.generate().private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as scratch:
                scratch.write(pem)
            try:
                os.link(scratch.name, path)  # fails if another process was first: then its key wins
            except FileExistsError:
                pass
            finally:
                os.unlink(scratch.name)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return cls(loaded)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {"keys": [{**public, "kid": self.key_id, "use": "sig", "alg": ALGORITHM}]}


@cache
def default_key() -> SigningKey:
    return SigningKey.at(DEFAULT_KEY_PATH)


def make_token(
    sub: str,
    *,
    audience: str | Iterable[str],
    issuer: str = LOCAL_ISSUER,
    key: SigningKey | None = None,
    lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
    scopes: Iterable[str] = (),
    claims: Mapping[str, Any] | None = None,
    now: int | None = None,
) -> str:
    """A signed JWT for ``sub`` with iss/aud/iat/exp; ``claims`` adds or replaces claims (None removes)."""
    issued_at = int(time.time()) if now is None else now
    audiences = [audience] if isinstance(audience, str) else list(audience)
    payload: dict[str, Any] = {
        "sub": sub,
        "iss": issuer,
        "aud": audiences[0] if len(audiences) == 1 else audiences,
        "iat": issued_at,
        "exp": issued_at + lifetime_seconds,
    }
    if scope := " ".join(scopes):
        payload["scope"] = scope
    for name, value in (claims or {}).items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    signing = key or default_key()
    return jwt.encode(payload, signing.private_key, algorithm=ALGORITHM, headers={"kid": signing.key_id})
