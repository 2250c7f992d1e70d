"""Passwords (argon2id), session tokens, CSRF tokens and the client's address.

A session cookie holds a random token; the database keeps only its SHA-256. CSRF tokens
are HMACs bound to the browser's session (or, before sign-in, to an anonymous cookie),
so a page of another site can neither read nor forge them. argon2 is memory-hard and
takes about a tenth of a second: the async wrappers run it in a worker thread (argon2-cffi
releases the GIL), so a burst of sign-ins never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the RFC 9106 low-memory parameters
# Verified when the account does not exist, so timing does not tell which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def hash_password(password: str) -> str:
    """argon2id hash with a random salt."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if the password matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def hash_password_off_loop(password: str) -> str:
    """hash_password in a worker thread."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_off_loop(stored_hash: str | None, password: str) -> bool:
    """verify_password in a worker thread."""
    return await asyncio.to_thread(verify_password, stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_token() -> str:
    """A random cookie value (256 bits)."""
    return secrets.token_urlsafe(32)


def new_stamp() -> str:
    """A fresh security stamp of an account (sessions carry the one they were opened under)."""
    return secrets.token_hex(8)


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


# -- the client's address -------------------------------------------------------------------


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    # One IPv6 subscriber holds a whole /64: throttling single addresses would not hold them.
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address sign-in throttling is keyed by: the peer's own, unless the peer is a
    trusted proxy; then the right-most X-Forwarded-For hop that is not a trusted proxy
    (hops to its left were written by the client and prove nothing)."""
    address = _parse(peer or "")
    if address is None:
        return "unknown"
    if not forwarded_for or not any(address in net for net in trusted):
        return _key(address)
    for hop in reversed(forwarded_for.split(",")):
        parsed = _parse(hop)
        if parsed is None:
            break  # a trusted proxy never writes this: stop at the last hop we can vouch for
        address = parsed
        if not any(parsed in net for net in trusted):
            break
    return _key(address)
