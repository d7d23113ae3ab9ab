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
import secrets
import time

ID_LENGTH = 32
SIGNED_LENGTH = 24
KEY_PURPOSE = b"recommendation ids"


class RecommendationIds:
    def __init__(self, signing_key: str) -> None:
        self._key = hmac.new(signing_key.encode(), KEY_PURPOSE, hashlib.sha256).digest()

    def new(self) -> str:
        signed = f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"
        return signed + self._signature(signed)

    def issued_at(self, recommendation_id: str) -> float | None:
        """When this service issued the id (seconds since the epoch); None for any other string."""
        if len(recommendation_id) != ID_LENGTH:
            return None
        signed, signature = recommendation_id[:SIGNED_LENGTH], recommendation_id[SIGNED_LENGTH:]
        if not hmac.compare_digest(signature, self._signature(signed)):
            return None
        try:
            return int(signed[:12], 16) / 1000
        except ValueError:  # a signature matched by chance (1 in 2**32)
            return None

    def _signature(self, signed: str) -> str:
        return hmac.new(self._key, signed.encode(), hashlib.sha256).hexdigest()[: ID_LENGTH - SIGNED_LENGTH]
