"""Coverage of zone_dwell_sales_correlation's 95 % interval (Fisher z, as the mart computes it in DuckDB)
on simulated zone-hours: dwell and sales bivariate normal with a known correlation, several seeds.

    python bench/bench_dwell_sales_ci.py [--reps 2000] [--seeds 5]

Prints, per true correlation and n, the share of intervals that cover the truth (mean and range
over seeds). Fisher z assumes bivariate normality; real sales are skewed, so treat it as a lower bar.
"""

from __future__ import annotations

import argparse

import duckdb
import numpy as np

# the mart's formula, over a table obs(rep, dwell, sales)
FISHER_SQL = """
with fits as (select rep, count(*) as n, corr(dwell, sales) as r from obs group by rep)
select avg((tanh(atanh(r) - 1.959963984540054 / sqrt(n - 3)) <= ?
            and ? <= tanh(atanh(r) + 1.959963984540054 / sqrt(n - 3)))::int) from fits
"""


def coverage(rho: float, n: int, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    xy = rng.multivariate_normal([300.0, 20.0], [[100.0**2, rho * 100 * 8], [rho * 100 * 8, 8.0**2]], size=(reps, n))
    obs = {"rep": np.repeat(np.arange(reps), n), "dwell": xy[..., 0].ravel(), "sales": xy[..., 1].ravel()}
    with duckdb.connect() as con:
        con.register("obs", obs)
        return con.execute(FISHER_SQL, [rho, rho]).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'rho':>5} {'n':>4}  coverage (mean, min-max over {args.seeds} seeds of {args.reps} fits)")
    for rho in (0.0, 0.3, 0.7):
        for n in (8, 30, 120):
            shares = [coverage(rho, n, args.reps, 1000 + seed) for seed in range(args.seeds)]
            print(f"{rho:>5} {n:>4}  {np.mean(shares):.3f}  {min(shares):.3f}-{max(shares):.3f}")


if __name__ == "__main__":
    main()
