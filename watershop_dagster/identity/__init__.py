"""Customer identity: known people, stable anonymous customer ids, visits, POS linking, erasure.

Small pure functions (numpy/polars in, numpy/polars out): `ids` (id derivation), `clustering`
(tracks into day-persons), `matching` (candidates and decisions), `registry` (a day's identities,
step by step, and the registry snapshot), `visits` and `linking`. `ledger` reads the customer
ledger; `pipeline` holds the per-shop-day entry points that read and write lake partitions (the
datasets and their schemas are declared in `watershop_dagster.catalog`); `privacy` erases a
customer and applies retention; `known_people` embeds the reference photos of staff, VIPs and
blocked people.
"""
