"""Deterministic ids of the identity step: hashes, so re-running a day gives the same ids."""

from __future__ import annotations

import hashlib
from datetime import date


def hid(*parts: object, size: int = 8) -> str:
    return hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=size).hexdigest()


def new_customer_id(shop_id: str, salt: str, track_id: str) -> str:
    """Deterministic id of a customer first created from `track_id` (salt: see privacy.id_salt)."""
    return "c_" + hid("customer", shop_id, salt, track_id, size=8)


def known_customer_id(shop_id: str, person_key: str) -> str:
    """Stable customer id of a known VIP/blocked person."""
    return "k_" + hid("known", shop_id, person_key, size=8)


def person_id_for(shop_id: str, day: date, first_track_id: str) -> str:
    return "p_" + hid("person", shop_id, day.isoformat(), first_track_id, size=8)
