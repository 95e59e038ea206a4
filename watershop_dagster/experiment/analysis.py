"""Did the treatment increase the metric, by how much, how sure: the analysis of a switchback experiment.

Model, on analysed zone-days (experiment days, washout dropped):
    log(metric[z,d]) = zone[z] + day[d] + tau * treated[z,d] + theta * x[z,d] + e[z,d]
Two-way fixed effects absorb zone size and store-wide day shocks. x is the CUPED covariate: the
zone's mean log metric on the same weekday in the pre-period. (A per-zone pre-period mean alone is
constant within a zone and absorbed by the zone effect; the weekday profile is what it adds.) theta is
estimated jointly with tau (Frisch-Waugh-Lovell), which is CUPED's theta within the fixed effects.

Relative lift = exp(tau) - 1: on the log scale a multiplicative effect is one constant, and exp(tau)-1
is the relative change of expected sales when the effect multiplies sales (the generator's truth).
The benchmark checks the coverage of this choice.

Inference:
- primary: randomisation inference redrawing the real assignment procedure (`design.draw_arms`)
  many times. p_value tests tau = 0; the 95 % CI inverts the test over tau0 (sharp null of a constant
  log effect). Exact under the design whatever the error correlation, even with 8 zones.
- secondary: cluster-robust SEs by zone (statsmodels, CR1) with t(G-1) critical values, and a wild
  cluster restricted bootstrap (Webb 6-point weights, suited to few clusters) p-value.
- power: minimum detectable effect (80 % power, 5 % two-sided) from the pre-period by laying the
  design over the shop's own history and measuring the spread of placebo estimates.
- guard rail: did the store's total move with the treated share of the day's sales, or did sales just
  move between zones?
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import polars as pl
from scipy import stats

from watershop_dagster.experiment.design import TREATMENT, ExperimentError, ExperimentSpec, draw_arms

ALPHA = 0.05
POWER = 0.80
WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
METRICS_SCHEMA: dict[str, pl.DataType] = {"zone": pl.Utf8(), "date": pl.Date(), "metric": pl.Float64()}


@dataclass(frozen=True)
class Interval:
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class ExperimentResult:
    """All on the relative-lift scale (0.10 = +10 %) unless named log_*."""

    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    mde: float | None
    n_cells: int
    log_effect: float
    theta: float
    n_zones: int
    n_days: int
    dropped_cells: int
    n_permutations: int
    cluster: dict
    wild_bootstrap: dict
    iid: dict
    guardrail: dict
    method: str = "TWFE on log(metric) with CUPED weekday covariate; RI CI by test inversion"
    series: list = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        """The JSON object of `watershop experiment analyse --json`."""
        out = asdict(self)
        out.pop("series")
        return out


class TwoWayDemeaner:
    """Removes zone and day means from columns of a (cells x k) matrix (alternating projections;
    exact in one sweep on a balanced panel)."""

    def __init__(self, zone: np.ndarray, day: np.ndarray, tol: float = 1e-11, max_sweeps: int = 500):
        self.zone, self.day = zone, day
        self.n_zone, self.n_day = int(zone.max()) + 1, int(day.max()) + 1
        zone_count, day_count = np.bincount(zone, minlength=self.n_zone), np.bincount(day, minlength=self.n_day)
        present = zone_count[zone_count > 0]
        self.balanced = bool((present == present[0]).all() and len(zone) == len(present) * (day_count > 0).sum())
        self.zone_count, self.day_count = np.maximum(zone_count, 1)[:, None], np.maximum(day_count, 1)[:, None]
        self.tol, self.max_sweeps = tol, max_sweeps

        self.zone_onehot = (zone[:, None] == np.arange(self.n_zone)[None, :]).astype(float)
        self.day_onehot = (day[:, None] == np.arange(self.n_day)[None, :]).astype(float)

    @staticmethod
    def _group_mean(m: np.ndarray, onehot: np.ndarray, count: np.ndarray) -> np.ndarray:
        return onehot @ ((onehot.T @ m) / count)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        m = np.asarray(values, dtype=float)
        flat = m.ndim == 1
        m = m.reshape(len(m), -1).copy()
        for _ in range(self.max_sweeps):
            m -= self._group_mean(m, self.zone_onehot, self.zone_count)
            day_mean = self._group_mean(m, self.day_onehot, self.day_count)
            m -= day_mean
            if self.balanced or np.abs(day_mean).max() < self.tol:
                break
        return m[:, 0] if flat else m


@dataclass(frozen=True)
class Panel:
    """The analysed cells of one experiment, as arrays."""

    zones: list[str]
    days: list[date]
    zone: np.ndarray
    day: np.ndarray
    period: np.ndarray
    treated: np.ndarray
    y: np.ndarray
    x: np.ndarray | None
    dropped: int
    n_periods: int


def _weekday_covariate(pre: pl.DataFrame, cells: pl.DataFrame) -> np.ndarray | None:
    """Per cell: the zone's pre-period mean log metric on the cell's weekday (zone mean where a weekday is
    missing); None when some zone has no pre-period data."""
    if pre.is_empty() or set(cells["zone"]) - set(pre["zone"]):
        return None
    pre = pre.with_columns(pl.col("date").dt.weekday().alias("weekday"), pl.col("metric").log().alias("log_m"))
    by_weekday = pre.group_by("zone", "weekday").agg(pl.col("log_m").mean().alias("x_wd"))
    by_zone = pre.group_by("zone").agg(pl.col("log_m").mean().alias("x_zone"))
    x = (
        cells.with_columns(pl.col("date").dt.weekday().alias("weekday"))
        .join(by_weekday, on=["zone", "weekday"], how="left")
        .join(by_zone, on="zone", how="left")
        .select(pl.coalesce("x_wd", "x_zone"))
        .to_series()
    )
    return x.to_numpy()


def build_panel(spec: ExperimentSpec, metrics: pl.DataFrame, assignment: pl.DataFrame) -> Panel:
    """Analysed cells from zone-day metrics (zone, date, metric) and the stored assignment."""
    metrics = metrics.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA).filter(pl.col("zone").is_in(spec.zones))
    positive = pl.col("metric").is_not_null() & pl.col("metric").is_finite() & (pl.col("metric") > 0)
    pre = metrics.filter(pl.col("date").is_between(spec.pre_start, spec.start, closed="left") & positive)
    design = assignment.filter(~pl.col("washout")).select("zone", "date", "arm", "period")
    joined = design.join(metrics, on=["zone", "date"], how="left")
    cells = joined.filter(positive).sort("zone", "date")
    if cells.is_empty():
        raise ExperimentError(
            f"no {spec.metric} data for the experiment's zones {spec.zones} between {spec.start} and {spec.end}"
        )
    days = sorted(set(cells["date"]))
    zone_pos, day_index = {z: i for i, z in enumerate(spec.zones)}, {d: i for i, d in enumerate(days)}
    return Panel(
        zones=list(spec.zones),
        days=days,
        zone=np.array([zone_pos[z] for z in cells["zone"]]),
        day=np.array([day_index[d] for d in cells["date"]]),
        period=cells["period"].to_numpy(),
        treated=(cells["arm"] == TREATMENT).to_numpy().astype(float),
        y=np.log(cells["metric"].to_numpy()),
        x=_weekday_covariate(pre, cells.select("zone", "date")),
        dropped=joined.height - cells.height,
        n_periods=spec.n_periods,
    )


# --- estimation ---------------------------------------------------------------------------------


def _residualise(columns: np.ndarray, x: np.ndarray | None) -> np.ndarray:
    """Columns minus their projection on the (demeaned) covariate."""
    if x is None:
        return columns
    return columns - np.outer(x, x @ columns) / (x @ x) if columns.ndim == 2 else columns - x * (x @ columns) / (x @ x)


@dataclass(frozen=True)
class Fit:
    """The point estimate and the pieces every inference method reuses."""

    tau: float
    theta: float
    demean: TwoWayDemeaner
    y: np.ndarray  # two-way demeaned log metric
    x: np.ndarray | None  # two-way demeaned covariate
    treated: np.ndarray  # two-way demeaned observed treatment
    r: np.ndarray  # treated residualised on x: tau = r.y / r.r


def fit(panel: Panel, use_covariate: bool = True) -> Fit:
    demean = TwoWayDemeaner(panel.zone, panel.day)
    y, d = demean(panel.y), demean(panel.treated)
    x = demean(panel.x) if use_covariate and panel.x is not None else None
    if x is not None and x @ x < 1e-12:
        x = None  # a covariate the fixed effects absorb entirely adds nothing
    r = _residualise(d, x)
    if r @ r < 1e-12:
        raise ExperimentError("the treatment does not vary once zone and day effects are removed")
    tau = float(r @ y / (r @ r))
    theta = float(x @ (y - tau * d) / (x @ x)) if x is not None else 0.0
    return Fit(tau, theta, demean, y, x, d, r)


def treatment_draws(panel: Panel, arms: np.ndarray) -> np.ndarray:
    """(cells, draws) treatment indicators of schedules `arms` (draws, zones, periods)."""
    return arms[:, panel.zone, panel.period].T.astype(float)


def permutation_estimates(panel: Panel, model: Fit, arms: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each redrawn schedule b: a_b = the estimate of tau on the observed outcome, and c_b = the
    estimate on the observed treatment. Under tau = tau0 the redrawn estimate is a_b - tau0 * c_b."""
    a, c = np.empty(len(arms)), np.empty(len(arms))
    for lo in range(0, len(arms), chunk):
        r = _residualise(model.demean(treatment_draws(panel, arms[lo: lo + chunk])), model.x)
        rr = np.einsum("ij,ij->j", r, r)
        with np.errstate(divide="ignore", invalid="ignore"):
            a[lo: lo + chunk] = model.y @ r / rr
            c[lo: lo + chunk] = model.treated @ r / rr
    ok = np.isfinite(a) & np.isfinite(c)
    return a[ok], c[ok]


def ri_pvalues(a: np.ndarray, c: np.ndarray, tau: float, tau0: np.ndarray | float, add_observed: bool = True):
    """Two-sided randomisation p-value of H0: tau = tau0 (vectorised over tau0).

    With `add_observed` the observed schedule counts as one of the draws ((1 + k) / (B + 1)), the
    valid form for randomly drawn schedules; without it, a and c must enumerate every schedule."""
    tau0 = np.atleast_1d(np.asarray(tau0, dtype=float))
    observed = np.abs(tau - tau0)
    drawn = np.abs(a[:, None] - tau0[None, :] * c[:, None])
    hits = (drawn >= observed[None, :] - 1e-9 * np.maximum(1.0, observed[None, :])).sum(axis=0)
    p = (hits + 1) / (len(a) + 1) if add_observed else hits / len(a)
    return p if p.size > 1 else float(p[0])


def ri_interval(a: np.ndarray, c: np.ndarray, tau: float, alpha: float = ALPHA) -> tuple[float, float]:
    """The tau0 not rejected at `alpha`: a grid around tau, then each end refined by bisection."""
    scale = max(float(np.std(a)), 1e-6)
    grid = tau + np.linspace(-10, 10, 801) * scale
    accepted = ri_pvalues(a, c, tau, grid) > alpha
    if not accepted.any():
        return tau, tau
    first, last = np.flatnonzero(accepted)[[0, -1]]

    def edge(inside: float, outside: float) -> float:
        for _ in range(40):
            middle = (inside + outside) / 2
            if ri_pvalues(a, c, tau, middle) > alpha:
                inside = middle
            else:
                outside = middle
        return inside

    low = edge(grid[first], grid[first - 1]) if first > 0 else grid[0]
    high = edge(grid[last], grid[last + 1]) if last < len(grid) - 1 else grid[-1]
    return float(low), float(high)


def cluster_robust(panel: Panel, use_covariate: bool = True) -> dict:
    """statsmodels OLS with zone and day dummies: CR1 cluster-by-zone and classical (iid) inference."""
    import statsmodels.api as sm

    n_zone, n_day = int(panel.zone.max()) + 1, int(panel.day.max()) + 1
    columns = [panel.treated]
    if use_covariate and panel.x is not None:
        columns.append(panel.x)
    zone_dummies = (panel.zone[:, None] == np.arange(1, n_zone)[None, :]).astype(float)
    day_dummies = (panel.day[:, None] == np.arange(1, n_day)[None, :]).astype(float)
    design = np.column_stack([*columns, np.ones(len(panel.y)), zone_dummies, day_dummies])
    design = design[:, np.abs(design).sum(axis=0) > 0]
    model = sm.OLS(panel.y, design)
    clusters = int(len(np.unique(panel.zone)))
    robust = model.fit(cov_type="cluster", cov_kwds={"groups": panel.zone})
    classical = model.fit()
    tau, df = float(robust.params[0]), clusters - 1
    out = {}
    for name, se, dof in (("cluster", float(robust.bse[0]), df), ("iid", float(classical.bse[0]), classical.df_resid)):
        crit = stats.t.ppf(1 - ALPHA / 2, dof)
        out[name] = {
            "log_effect": tau, "se": se, "df": float(dof),
            "effect": float(np.expm1(tau)),
            "ci_low": float(np.expm1(tau - crit * se)), "ci_high": float(np.expm1(tau + crit * se)),
            "p_value": float(2 * stats.t.sf(abs(tau / se), dof)),
        }
    out["cluster"]["clusters"] = clusters
    return out


def wild_cluster_bootstrap(panel: Panel, model: Fit, draws: int = 999, seed: int = 0) -> dict:
    """Wild cluster restricted bootstrap (H0: tau = 0) of the cluster-robust t, Webb weights by zone."""
    rng = np.random.default_rng([seed, 11])
    zone = panel.zone
    n_zone = int(zone.max()) + 1
    r, rr = model.r, model.r @ model.r
    restricted = _residualise(model.y, model.x)  # residuals with tau = 0 imposed

    def cluster_t(residual_columns: np.ndarray, estimates: np.ndarray) -> np.ndarray:
        scores = model.demean.zone_onehot.T @ (r[:, None] * residual_columns)
        return estimates / np.sqrt((scores**2).sum(axis=0) / rr**2)

    unrestricted = (model.y - model.tau * model.treated)
    unrestricted = _residualise(unrestricted, model.x)[:, None]
    t_observed = float(cluster_t(unrestricted, np.array([model.tau]))[0])
    weights = WEBB[rng.integers(0, len(WEBB), (n_zone, draws))]
    t_star = np.empty(draws)
    for lo in range(0, draws, 256):
        w = weights[:, lo: lo + 256]
        y_star = restricted[:, None] * w[zone]
        y_star = _residualise(model.demean(y_star), model.x)
        tau_star = r @ y_star / rr
        residuals = y_star - np.outer(r, tau_star)
        t_star[lo: lo + 256] = cluster_t(residuals, tau_star)
    return {"p_value": float(np.mean(np.abs(t_star) >= abs(t_observed))), "t": t_observed,
            "draws": draws, "weights": "webb"}


def minimum_detectable_effect(spec: ExperimentSpec, metrics: pl.DataFrame, draws: int = 400) -> float | None:
    """Relative lift detectable with 80 % power at 5 % (two-sided), from pre-period history alone.

    The design is laid over the pre-period (same unit, zones, pairing) and redrawn; the spread of the
    placebo estimates is the estimator's standard error for that many cells, scaled to the experiment's
    cell count. The placebo fits use the CUPED covariate too, cross-fitted: each pre-period cell's
    zone x weekday mean leaves that cell out, so the covariate never sees the noise it adjusts (slightly
    noisier than the real covariate, hence slightly conservative). None when the pre-period holds fewer
    than two periods of data."""
    metrics = metrics.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA)
    pre = metrics.filter(
        pl.col("zone").is_in(spec.zones) & pl.col("date").is_between(spec.pre_start, spec.start, closed="left")
        & (pl.col("metric") > 0)
    ).sort("zone", "date")
    pre_days = (spec.start - spec.pre_start).days
    n_periods = pre_days // spec.period_days
    if n_periods < 2 or pre.is_empty():
        return None
    offset = np.array([(d - spec.pre_start).days for d in pre["date"]])
    keep = (offset < n_periods * spec.period_days) & (offset % spec.period_days >= spec.washout_days)
    pre = pre.filter(pl.Series(keep))
    if pre["date"].n_unique() < 2:
        return None
    zone_pos = {z: i for i, z in enumerate(spec.zones)}
    days = sorted(set(pre["date"]))
    day_index = {d: i for i, d in enumerate(days)}
    panel = Panel(
        zones=list(spec.zones), days=days,
        zone=np.array([zone_pos[z] for z in pre["zone"]]), day=np.array([day_index[d] for d in pre["date"]]),
        period=offset[keep] // spec.period_days, treated=np.zeros(pre.height),
        y=np.log(pre["metric"].to_numpy()), x=None, dropped=0, n_periods=n_periods,
    )
    demean = TwoWayDemeaner(panel.zone, panel.day)
    y = demean(panel.y)
    covariate = _leave_one_out_weekday_mean(pre)
    x = demean(covariate) if covariate is not None else None
    arms = draw_arms(len(spec.zones), n_periods, np.random.default_rng([spec.seed, 21]), draws)
    r = _residualise(demean(treatment_draws(panel, arms)), x if x is not None and x @ x > 1e-12 else None)
    rr = np.einsum("ij,ij->j", r, r)
    placebo = (y @ r / rr)[rr > 1e-12]
    n_experiment_cells = len(spec.zones) * sum(
        1 for i in range(len(spec.days)) if i % spec.period_days >= spec.washout_days
    )
    se = float(np.std(placebo, ddof=1)) * np.sqrt(pre.height / n_experiment_cells)
    return float(np.expm1((stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)) * se))


def _leave_one_out_weekday_mean(pre: pl.DataFrame) -> np.ndarray | None:
    """Per pre-period cell: the mean log metric of the zone's other cells on the same weekday; None when
    some zone-weekday has a single cell."""
    grouped = pre.with_columns(pl.col("metric").log().alias("log_m"), pl.col("date").dt.weekday().alias("weekday"))
    grouped = grouped.with_columns(
        pl.col("log_m").sum().over("zone", "weekday").alias("total"), pl.len().over("zone", "weekday").alias("n")
    )
    if grouped["n"].min() < 2:
        return None
    return ((grouped["total"] - grouped["log_m"]) / (grouped["n"] - 1)).to_numpy()


def store_guardrail(spec: ExperimentSpec, metrics: pl.DataFrame, assignment: pl.DataFrame, zone_effect: float) -> dict:
    """Did the store's total move, or did sales only move between zones?

    Each analysed day's treated share s_d is the share of the store's usual sales (pre-period zone x
    weekday means, all zones in `metrics`) that sat in treated zones. Regressing log(store total) on
    s_d and weekday dummies (HAC standard errors) estimates the store-level log lift if the whole store
    were treated: close to the zones' own estimate when the lift is real, near 0 when sales only moved.
    Balanced designs keep s_d in a narrow band, so this check is weak; it says "inconclusive" then."""
    import statsmodels.api as sm

    metrics = metrics.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA).with_columns(
        pl.col("date").dt.weekday().alias("weekday"))
    pre = metrics.filter(pl.col("date").is_between(spec.pre_start, spec.start, closed="left"))
    if pre.is_empty():
        return {"verdict": "inconclusive", "note": "no pre-period data to weigh zones"}
    usual = pre.group_by("zone", "weekday").agg(pl.col("metric").mean().alias("usual"))
    days = metrics.filter(pl.col("date").is_between(spec.start, spec.end)).join(
        assignment.filter(~pl.col("washout")).select("zone", "date", "arm"), on=["zone", "date"], how="left"
    ).join(usual, on=["zone", "weekday"], how="left").group_by("date", "weekday").agg(
        pl.col("metric").sum().alias("total"),
        (pl.col("usual").filter(pl.col("arm") == TREATMENT).sum() / pl.col("usual").sum()).alias("share"),
        pl.col("arm").is_not_null().any().alias("analysed"),
    ).filter(pl.col("analysed") & (pl.col("total") > 0)).sort("date")
    share = days["share"].to_numpy()
    if days.height < 10 or np.std(share) < 1e-4:
        return {"verdict": "inconclusive", "note": "too few days or every day had the same treated share",
                "days": days.height}
    weekday = days["weekday"].to_numpy()
    dummies = (weekday[:, None] == np.unique(weekday)[None, 1:]).astype(float)
    design = np.column_stack([share, np.ones(days.height), dummies])
    result = sm.OLS(np.log(days["total"].to_numpy()), design).fit(
        cov_type="HAC", cov_kwds={"maxlags": max(1, spec.period_days)})
    beta, se = float(result.params[0]), float(result.bse[0])
    crit = stats.t.ppf(1 - ALPHA / 2, days.height - design.shape[1])
    low, high = beta - crit * se, beta + crit * se
    if low <= zone_effect <= high and low > 0:
        verdict = "consistent: the store total rose with the treated share"
    elif not (low <= zone_effect <= high):
        verdict = "store total did not move as the zones suggest: sales may be shifting between zones"
    else:
        verdict = "inconclusive"
    return {"store_log_effect": beta, "ci_low": low, "ci_high": high, "zone_log_effect": zone_effect,
            "share_sd": float(np.std(share)), "days": days.height, "verdict": verdict}


def _series(panel: Panel, metrics: pl.DataFrame, spec: ExperimentSpec) -> list[dict]:
    """Per analysed day: treated and control zones' sales as an index (zone's pre-period mean = 100)."""
    level = np.exp(panel.y)
    base = np.zeros(len(panel.zones))
    pre = metrics.filter(pl.col("date").is_between(spec.pre_start, spec.start, closed="left"))
    means = dict(pre.group_by("zone").agg(pl.col("metric").mean()).iter_rows())
    for i, zone in enumerate(panel.zones):
        mine = level[panel.zone == i]
        base[i] = means.get(zone) or (mine.mean() if len(mine) else 1.0)
    index = 100 * level / base[panel.zone]
    rows = []
    for k, day in enumerate(panel.days):
        on_day = panel.day == k
        treated, control = on_day & (panel.treated == 1), on_day & (panel.treated == 0)
        rows.append({"date": day.isoformat(),
                     "treated": float(index[treated].mean()) if treated.any() else None,
                     "control": float(index[control].mean()) if control.any() else None})
    return rows


def analyse(
    spec: ExperimentSpec,
    metrics: pl.DataFrame,
    assignment: pl.DataFrame,
    permutations: int = 2000,
    bootstrap: int = 999,
    with_mde: bool = True,
    with_guardrail: bool = True,
) -> ExperimentResult:
    """The full analysis of one experiment from zone-day metrics (zone, date, metric)."""
    panel = build_panel(spec, metrics, assignment)
    model = fit(panel)
    arms = draw_arms(len(spec.zones), spec.n_periods, np.random.default_rng([spec.seed, 1]), permutations)
    a, c = permutation_estimates(panel, model, arms)
    low, high = ri_interval(a, c, model.tau)
    regression = cluster_robust(panel)
    return ExperimentResult(
        effect=float(np.expm1(model.tau)),
        ci_low=float(np.expm1(low)),
        ci_high=float(np.expm1(high)),
        p_value=ri_pvalues(a, c, model.tau, 0.0),
        mde=minimum_detectable_effect(spec, metrics) if with_mde else None,
        n_cells=len(panel.y),
        log_effect=model.tau,
        theta=model.theta,
        n_zones=len(np.unique(panel.zone)),
        n_days=len(panel.days),
        dropped_cells=panel.dropped,
        n_permutations=len(a),
        cluster=regression["cluster"],
        wild_bootstrap=wild_cluster_bootstrap(panel, model, bootstrap, spec.seed),
        iid=regression["iid"],
        guardrail=store_guardrail(spec, metrics, assignment, model.tau) if with_guardrail else {},
        series=_series(panel, metrics.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA), spec),
    )
