"""Secrets: password hashing and the random tokens behind sessions and API tokens.

Kept free of web imports so that `yuqing users` can hash a password without loading the
app. Passwords are hashed with argon2id (`argon2-cffi`'s RFC 9106 defaults). Session and
API tokens are 256 random bits; only their SHA-256 is stored: a token that long needs no
slow hash, and a copy of the database then holds nothing that can be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: Longest password accepted: argon2 hashes any length, but a megabyte "password" would
#: only be a way to burn server time.
MAX_PASSWORD_LENGTH = 1024
API_TOKEN_PREFIX = "yq_"


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id hash (`$argon2id$...`) with its own random salt."""
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches. With no hash (unknown user) a dummy hash is checked
    anyway, so the answer takes as long and does not tell which usernames exist."""
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's defaults."""
    return _hasher().check_needs_rehash(password_hash)


def random_password() -> str:
    """A generated password (about 96 bits), printed once to whoever created the user."""
    return secrets.token_urlsafe(12)


def new_token(prefix: str = "") -> str:
    """A random bearer secret (256 bits), URL- and header-safe."""
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is stored and looked up for a session or API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a client-supplied secret (the CSRF token)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
