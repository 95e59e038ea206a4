"""The fixed words stored in the lake and the POS exports, each defined once.

Plain string constants rather than `enum.Enum`: polars turns Python enums into its own Enum
dtype, which breaks comparisons against Utf8 columns; these compare and serialise as the text.
"""

from __future__ import annotations

from typing import Final


class Role:
    """Who a face or a visit belongs to (``role`` columns)."""

    CUSTOMER: Final = "customer"
    STAFF: Final = "staff"
    VIP: Final = "vip"
    BLOCKED: Final = "blocked"
    UNIDENTIFIED: Final = "unidentified"  # a track too poor to identify


#: roles of known people: the folders of ``<known_people>/<role>/<name>/``
KNOWN_ROLES: Final = (Role.STAFF, Role.VIP, Role.BLOCKED)
#: known roles that raise an alert on entry
ALERT_ROLES: Final = (Role.VIP, Role.BLOCKED)
#: roles whose visits may pay (staff never do)
PAYING_ROLES: Final = (Role.CUSTOMER, Role.VIP, Role.BLOCKED)


class Verdict:
    """How a track got its identity (``decision`` columns); known people get ``known:<role>``."""

    MATCHED: Final = "matched"
    NEW: Final = "new"
    AMBIGUOUS: Final = "ambiguous"
    UNIDENTIFIED: Final = "unidentified"
    KNOWN_PREFIX: Final = "known:"

    @staticmethod
    def known(role: str) -> str:
        return f"{Verdict.KNOWN_PREFIX}{role}"


#: POS export vocabulary, in the order the generator's mixes use
PAYMENT_MODES: Final = ("Cash", "UPI", "Coin")
CAN_SIZES: Final = ("10L", "20L")
PAYMENT_STATUSES: Final = ("Paid", "Unpaid")

#: ``reason`` of a transaction link whose person was erased
REASON_ERASED: Final = "erased"


#: the supermarket's canonical receipt line columns (one row per line; refunds and voids negative)
RECEIPT_COLUMNS: Final = (
    "receipt_id", "timestamp", "till", "customer_id", "payment_mode", "product_id", "product_name", "category",
    "quantity", "unit_price", "discount", "line_total",
)
