"""Documents the console stores: accounts, sessions and failed sign-ins (it owns no case
data)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tiaojie.contracts.common import Role


class _Stored(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Account(_Stored):
    """A person who signs in; role and counties become the claims of the tokens the
    console signs for them, so the services scope them exactly as they would any caller."""

    username: str = Field(alias="_id")
    display_name: str
    password_hash: str
    role: Role
    counties: list[str] = Field(default_factory=list)
    mediator_id: str | None = None
    organisation_id: str | None = None
    active: bool = True
    demo: bool = False
    # Replaced whenever the account is disabled or its role, counties, organisation or
    # password change: a session opened under another stamp is ended at its next request.
    security_stamp: str = ""
    created_at: datetime


class SessionDoc(_Stored):
    """A signed-in browser. The _id is a hash of the cookie value, so the stored
    sessions cannot be replayed by someone who reads the database."""

    id: str = Field(alias="_id")
    username: str
    display_name: str
    role: Role
    counties: list[str] = Field(default_factory=list)
    mediator_id: str | None = None
    organisation_id: str | None = None
    security_stamp: str = ""  # the account's when the session was opened
    created_at: datetime
    last_seen: datetime
    expires_at: datetime  # absolute limit; idle expiry is last_seen + idle seconds


class SignInAttempt(_Stored):
    """One sign-in attempt, written before the password is checked (so concurrent attempts
    count each other) and kept only if it failed. Keyed by the username as typed, whether
    or not it exists, so a lock-out says nothing about which accounts exist."""

    id: str = Field(alias="_id")
    username: str
    address: str  # the client's address (an IPv6 /64); never logged
    at: datetime
