"""Tokens for tests and benchmarks, and the token keys the mesh's processes are given.

Everything here signs with the development issuer's key (generated once under the data
folder, `tiaojie.runtime.auth.development_key`): the harness plays the issuer, as the
console and `tiaojie token` do in development. Service processes get only its public key
set; the console, the issuer, gets the private key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tiaojie.contracts.common import Role
from tiaojie.runtime.auth import SERVICE_AUDIENCES, development_key, issue_token, jwks_of, signer_for
from tiaojie.runtime.settings import RuntimeSettings


def token(
    settings: RuntimeSettings,
    *,
    subject: str,
    role: Role,
    counties: Sequence[str],
    audience: str | Sequence[str] = SERVICE_AUDIENCES,
    **claims: Any,
) -> str:
    """A token of the development issuer: for every service unless one is named."""
    return issue_token(
        signer_for(settings), subject=subject, role=role, counties=counties, audience=audience, **claims
    )


def process_env(settings: RuntimeSettings, service: str) -> dict[str, str]:
    """The token keys of a mesh process: the public key set for a service, the issuer's
    private key (and the set it publishes) for the console."""
    key = development_key(settings)
    env = {"TIAOJIE_JWT_JWKS": jwks_of(key)}
    if service == "console":
        env["TIAOJIE_JWT_SIGNING_KEY"] = json.dumps(key)
    return env
