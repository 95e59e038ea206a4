"""The experiment report an owner reads: one PNG (effect with its 95 % CI and the MDE, treated vs
control over time, the assignment calendar) and one HTML page with the figures, written atomically
(PNG first, HTML last) into <workspace>/experiments/<name>/report/."""

from __future__ import annotations

import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from watershop_dagster.atomic import atomic_write_bytes  # noqa: E402
from watershop_dagster.experiment.analysis import ExperimentResult  # noqa: E402
from watershop_dagster.experiment.design import TREATMENT, ExperimentSpec  # noqa: E402

PNG_FILE, HTML_FILE = "experiment.png", "experiment.html"
TREATED_COLOUR, CONTROL_COLOUR, WASHOUT_COLOUR = "#d95f02", "#1b9e77", "#bbbbbb"


def _effect_panel(ax, result: ExperimentResult) -> None:
    rows = [("Randomisation inference", result.effect, result.ci_low, result.ci_high),
            ("Cluster-robust t(G-1)", result.cluster["effect"], result.cluster["ci_low"], result.cluster["ci_high"])]
    for y, (label, estimate, low, high) in enumerate(rows):
        ax.errorbar(100 * estimate, y, xerr=[[100 * (estimate - low)], [100 * (high - estimate)]], fmt="o",
                    color="black", capsize=5)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.axvline(0, color="grey", lw=1)
    if result.mde is not None:
        for sign in (-1, 1):
            ax.axvline(sign * 100 * result.mde, color="grey", ls=":", lw=1)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("lift (%)  — dotted: ± minimum detectable effect")
    ax.set_title(f"Effect {100 * result.effect:+.1f}% (95% CI {100 * result.ci_low:+.1f}% to "
                 f"{100 * result.ci_high:+.1f}%), RI p = {result.p_value:.3f}", fontsize=10)


def _series_panel(ax, result: ExperimentResult) -> None:
    series = pl.DataFrame(result.series, schema={"date": pl.Utf8, "treated": pl.Float64, "control": pl.Float64})
    days = series["date"].str.to_date().to_list()
    ax.plot(days, series["treated"], color=TREATED_COLOUR, marker=".", label="treated zones")
    ax.plot(days, series["control"], color=CONTROL_COLOUR, marker=".", label="control zones")
    ax.axhline(100, color="grey", lw=1)
    ax.set_ylabel("sales index (zone's pre-period mean = 100)")
    ax.set_title("Treated vs control zones over time", fontsize=10)
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)


def _calendar_panel(ax, spec: ExperimentSpec, assignment: pl.DataFrame) -> None:
    days = spec.days
    grid = np.zeros((len(spec.zones), len(days)))
    position = {d: i for i, d in enumerate(days)}
    for zone, day, arm, washout in assignment.select("zone", "date", "arm", "washout").iter_rows():
        grid[spec.zones.index(zone), position[day]] = 0.5 if washout else (1.0 if arm == TREATMENT else 0.0)
    colours = matplotlib.colors.ListedColormap([CONTROL_COLOUR, WASHOUT_COLOUR, TREATED_COLOUR])
    ax.imshow(grid, aspect="auto", cmap=colours, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(spec.zones)), spec.zones)
    step = max(1, len(days) // 10)
    ax.set_xticks(range(0, len(days), step), [days[i].isoformat() for i in range(0, len(days), step)],
                  rotation=30, fontsize=7)
    ax.set_title("Assignment calendar (orange treatment, green control, grey washout)", fontsize=10)


def render_png(result: ExperimentResult, spec: ExperimentSpec, assignment: pl.DataFrame) -> bytes:
    figure, axes = plt.subplots(3, 1, figsize=(10, 11), height_ratios=[1, 2, 1.5])
    try:
        _effect_panel(axes[0], result)
        _series_panel(axes[1], result)
        _calendar_panel(axes[2], spec, assignment)
        figure.suptitle(f"Experiment {spec.name}: {spec.treatment or 'treatment'}", fontsize=12)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()
    finally:
        plt.close(figure)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def render_html(result: ExperimentResult, spec: ExperimentSpec) -> str:
    guard = result.guardrail or {}
    rows = [
        ("Effect on " + spec.metric, _percent(result.effect)),
        ("95% CI (randomisation inference)", f"{_percent(result.ci_low)} to {_percent(result.ci_high)}"),
        ("p-value (randomisation inference, "
         f"{result.n_permutations} redraws)", f"{result.p_value:.4f}"),
        ("Minimum detectable effect (80% power, from pre-period)", _percent(result.mde)),
        ("Cluster-robust 95% CI (t with G-1 df)", f"{_percent(result.cluster['ci_low'])} to "
                                                   f"{_percent(result.cluster['ci_high'])}"),
        ("Wild cluster bootstrap p-value (Webb)", f"{result.wild_bootstrap['p_value']:.4f}"),
        ("Store guard rail", guard.get("verdict", "not run")),
        ("Zone-days analysed", f"{result.n_cells} ({result.n_zones} zones x {result.n_days} days; "
                               f"{result.dropped_cells} without data)"),
    ]
    body = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    answer = ("yes" if result.p_value < 0.05 and result.effect > 0 else
              "no: it decreased" if result.p_value < 0.05 else "not shown: the data are consistent with no effect")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Experiment {html.escape(spec.name)}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}th{{text-align:left;padding-right:2em}}</style>
</head><body>
<h1>Experiment {html.escape(spec.name)}</h1>
<p>{html.escape(spec.treatment)} &middot; zones {html.escape(', '.join(spec.zones))} &middot; {spec.unit} switchback
from {spec.start} to {spec.end} (pre-period from {spec.pre_start}, washout {spec.washout_days} days)</p>
<h2>Did it increase {html.escape(spec.metric)}? {html.escape(answer)}</h2>
<table>{body}</table>
<p><img src="{PNG_FILE}" alt="effect, treated vs control over time, assignment calendar" width="100%"></p>
<p><small>{html.escape(result.method)}</small></p>
</body></html>
"""


def write_report(result: ExperimentResult, spec: ExperimentSpec, assignment: pl.DataFrame, folder: Path) -> dict:
    folder = Path(folder)
    png = atomic_write_bytes(folder / PNG_FILE, render_png(result, spec, assignment))
    page = atomic_write_bytes(folder / HTML_FILE, render_html(result, spec).encode())
    return {"html": page, "png": png}
