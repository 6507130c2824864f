"""Dev tokens: a local signing key stands in for Cognito (user JWTs) and IAM (services).

A user token carries the account in ``sub``, as a Cognito token would. A service
token carries ``role: service``; the gateway presents it to the functions as an
IAM caller, exactly the authorizer context a SigV4-signed request gets on AWS.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import jwt

ISSUER = "tollbooth-local"
AUDIENCE = "tollbooth-local"
ALGORITHM = "HS256"
KEY_FILE = "dev-signing-key"


def signing_key(state_dir: Path) -> str:
    path = state_dir / KEY_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def mint(state_dir: Path, *, account: str | None = None, role: str | None = None, ttl_seconds: int = 43_200) -> str:
    if (account is None) == (role is None):
        raise ValueError("give exactly one of ACCOUNT=<id> or ROLE=service")
    if role is not None and role != "service":
        raise ValueError("the only role is 'service'")
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_seconds}
    if account is not None:
        claims["sub"] = account
    else:
        claims["sub"] = "local-service"
        claims["role"] = "service"
    return jwt.encode(claims, signing_key(state_dir), algorithm=ALGORITHM)


def verify(state_dir: Path, token: str) -> dict[str, Any]:
    """The token's claims, or jwt.InvalidTokenError."""
    return jwt.decode(
        token,
        signing_key(state_dir),
        algorithms=[ALGORITHM],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iss", "aud", "sub"]},
    )
