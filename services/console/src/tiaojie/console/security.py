"""Passwords (argon2id), session tokens and CSRF tokens.

A session cookie holds a random token; the database keeps only its SHA-256. CSRF tokens
are HMACs bound to the browser's session (or, before sign-in, to an anonymous cookie),
so a page of another site can neither read nor forge them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the RFC 9106 low-memory parameters
# Verified when the account does not exist, so timing does not tell which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """argon2id hash with a random salt."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if the password matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_token() -> str:
    """A random cookie value (256 bits)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database stores for a cookie value."""
    return hashlib.sha256(token.encode()).hexdigest()


class CsrfSigner:
    """CSRF tokens as HMACs of the cookie they belong to."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"tiaojie-console-csrf\x00" + secret.encode()).digest()

    def token_for(self, binding: str) -> str:
        return hmac.new(self._key, binding.encode(), hashlib.sha256).hexdigest()

    def valid(self, binding: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.token_for(binding), token or "")
