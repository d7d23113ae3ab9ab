"""Recommendation ids that say when they were issued, signed so that a made-up one is told apart at once.

An id is 32 hex digits: the time it was issued in milliseconds (12), 12 random digits, then the first
8 digits of an HMAC-SHA256 of those 24 under a key derived from the service's signing key.

Why: each replica journals its recommendations and its mule copies them into the shared database
within a fraction of a second. A score can reach replica B for an id that replica A has just answered,
before A's copy lands; B then waits for it, but only for a genuine id issued moments ago, so a made-up
id cannot hold a worker.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

ID_LENGTH = 32
SIGNED_LENGTH = 24
# Exactly what new() makes: lowercase hex only (not the Unicode digits that int() and \d take).
ID_PATTERN = r"^[0-9a-f]{32}$"
KEY_PURPOSE = b"recommendation ids"


class RecommendationIds:
    def __init__(self, signing_key: str) -> None:
        self._key = hmac.new(signing_key.encode(), KEY_PURPOSE, hashlib.sha256).digest()

    def new(self) -> str:
        signed = f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"
        return signed + self._signature(signed)

    def issued_at(self, recommendation_id: str) -> float | None:
        """When this service issued the id (seconds since the epoch); None for any other string."""
        if not re.fullmatch(ID_PATTERN, recommendation_id):
            return None
        signed, signature = recommendation_id[:SIGNED_LENGTH], recommendation_id[SIGNED_LENGTH:]
        # As bytes: compare_digest refuses a str that is not ASCII (a TypeError, not a mismatch).
        if not hmac.compare_digest(signature.encode(), self._signature(signed).encode()):
            return None
        return int(signed[:12], 16) / 1000

    def _signature(self, signed: str) -> str:
        return hmac.new(self._key, signed.encode(), hashlib.sha256).hexdigest()[: ID_LENGTH - SIGNED_LENGTH]
