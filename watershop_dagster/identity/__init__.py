"""Customer identity: known people, stable anonymous customer ids, visits, POS linking, erasure.

Small pure functions (numpy/polars in, numpy/polars out) live in `registry`, `visits` and
`linking`; `pipeline` holds the per-shop-day entry points that read and write lake partitions
(see its docstring for every dataset and schema); `privacy` erases a customer and applies
retention; `known_people` embeds the reference photos of staff, VIPs and blocked people.
"""
