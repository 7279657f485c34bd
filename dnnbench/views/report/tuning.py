"""The report's tuning section: learning-rate sensitivity, default against tuned, performance profiles,
and the Crowded Valley question (does trying several optimizers at their defaults match tuning one?)."""

from __future__ import annotations

from html import escape

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from dnnbench.results.tuning import POPULAR, TAU_MAX, performance_profile, profile_times, reruns, select, trials
from dnnbench.results.tuning import crowded_valley as judged_crowded_valley
from dnnbench.views.report.charts import LEGEND, PALETTE


def sensitivity(frame: pd.DataFrame) -> Figure | None:
    """Validation score against learning rate per optimizer, one panel per problem; the defaults marked."""
    t = trials(frame)
    if t.empty:
        return None
    t = t.assign(
        value=np.where(
            t["target_metric"].fillna("").str.endswith("accuracy"), t["best_val_accuracy"], t["best_val_loss"]
        )
    )
    problems = list(dict.fromkeys(t["problem"]))
    fig, axes = plt.subplots(1, len(problems), figsize=(5.5 * len(problems), 4), squeeze=False)
    for ax, problem in zip(axes[0], problems, strict=True):
        rows = t[t["problem"] == problem]
        sns.lineplot(
            data=rows,
            x="lr_value",
            y="value",
            hue="optimizer",
            palette=PALETTE,
            marker="o",
            errorbar=("pi", 100),
            ax=ax,
        )
        defaults = rows[rows["lr"].isna()]
        ax.scatter(
            defaults["lr_value"],
            defaults["value"],
            s=120,
            facecolors="none",
            edgecolors="black",
            zorder=5,
            label="default lr",
        )
        classification = rows["target_metric"].iloc[0].endswith("accuracy")
        ax.set(xscale="log", yscale="linear" if classification else "log", title=problem, xlabel="learning rate (log)",
               ylabel="best validation accuracy" if classification else "best validation MSE")  # fmt: skip
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [LEGEND.get(label, label) for label in labels], fontsize="x-small")
    fig.suptitle(
        "Learning-rate sensitivity (validation only; circles: each optimizer's default; diverged trials absent)"
    )
    fig.tight_layout()
    return fig


def profiles(frame: pd.DataFrame) -> tuple[Figure | None, pd.DataFrame]:
    """ρ(τ) per optimizer at default and at tuned rates, and the scores (area under ρ from 1 to 4, / 3),
    from one profile over both settings and the problems every optimizer ran (results/tuning.py)."""
    chosen = select(frame)
    runs = reruns(frame, chosen)
    times = profile_times(runs)
    if times.empty:
        return None, pd.DataFrame()
    rho, score = performance_profile(times)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    scores = {}
    for ax, setting in zip(axes, ("default", "tuned"), strict=True):
        suffix = f" ({setting})"
        scores[setting] = {label.removesuffix(suffix): v for label, v in score.items() if label.endswith(suffix)}
        for label in (c for c in rho.columns if c.endswith(suffix)):
            optimizer = label.removesuffix(suffix)
            ax.step(
                rho.index,
                rho[label],
                where="post",
                label=LEGEND.get(optimizer, optimizer),
                color=PALETTE.get(optimizer),
            )
        ax.set(
            title=f"at {setting} learning rates",
            xlabel="τ (time to target within τ × the best)",
            xlim=(1, TAU_MAX),
            ylim=(0, 1.05),
        )
    axes[0].set_ylabel("share of problems")
    axes[1].legend(fontsize="x-small")
    fig.suptitle(
        "Performance profiles (AlgoPerf): time to target on fresh seeds, within τ × the best of either setting"
    )
    fig.tight_layout()
    table = pd.DataFrame(scores).rename(columns={"default": "score at default lr", "tuned": "score at tuned lr"})
    return fig, table.sort_values(table.columns[-1], ascending=False)


def default_vs_tuned(frame: pd.DataFrame) -> pd.DataFrame:
    chosen = select(frame)
    runs = reruns(frame, chosen)
    if chosen.empty:
        return pd.DataFrame()
    out = chosen[["problem", "optimizer", "default_lr", "tuned_lr", "trials", "diverged", "tuning_cost_s"]].copy()
    for setting in ("default", "tuned"):
        part = (
            runs[runs["setting"] == setting].set_index(["problem", "optimizer"]) if not runs.empty else pd.DataFrame()
        )
        keys = list(zip(out["problem"], out["optimizer"], strict=True))
        for column in ("time_to_target_s", "final_test_accuracy", "final_test_loss"):
            out[f"{column} ({setting})"] = [
                part[column].get(k) if not part.empty and k in part.index else None for k in keys
            ]
    return out


def crowded_valley(frame: pd.DataFrame) -> list[str]:
    """Per problem: the best of all optimizers at their defaults against tuning one (Adam) and the best
    tuned, as results/tuning.crowded_valley answered it."""
    lines = []
    for answer in judged_crowded_valley(frame):
        if answer.unanswerable or answer.best_default is None or answer.best_tuned is None:
            lines.append(f"{answer.problem}: not answerable here ({answer.unanswerable})")
            continue
        (default_name, default_s), (tuned_name, tuned_s) = answer.best_default, answer.best_tuned
        one = answer.popular_tuned
        lines.append(
            f"{answer.problem}: trying {answer.tried} optimizers at their defaults reaches the target in "
            f"{default_s:.3g} s ({default_name}); tuning {POPULAR} alone: "
            + (f"{one:.3g} s, so the defaults {answer.verdict} it" if one else f"{POPULAR} never reaches it")
            + f"; the best tuned: {tuned_s:.3g} s ({tuned_name})."
        )
    return lines


def section_html(frame: pd.DataFrame) -> str | None:
    """The tuning section's text and tables (the charts go with the others)."""
    table = default_vs_tuned(frame)
    if table.empty:
        return None
    _, scores = profiles(frame)
    fmt = table.copy()
    for column in fmt.columns:
        if column.startswith("time_to_target_s"):
            fmt[column] = fmt[column].map(lambda v: "not reached" if v is None or pd.isna(v) else f"{v:.3g} s")
        elif column.startswith("final_test"):
            fmt[column] = fmt[column].map(lambda v: "—" if v is None or pd.isna(v) else f"{v:.4f}")
    fmt["tuning_cost_s"] = fmt["tuning_cost_s"].map(lambda v: f"{v:.1f} s")
    valley = "".join(f"<li>{escape(line)}</li>" for line in crowded_valley(frame))
    return (
        "<p>The sweep chose each optimizer's learning rate on the validation split alone; the default and the "
        "chosen rate were then re-run on fresh seeds. Tuning cost: training seconds of the sweep.</p>"
        + fmt.to_html(index=False, border=0, na_rep="—").replace('<table class="dataframe">', "<table>", 1)
        + "<h3>Performance-profile scores (area under ρ from τ = 1 to 4, / 3)</h3>"
        + scores.to_html(border=0, float_format=lambda v: f"{v:.3f}").replace('<table class="dataframe">', "<table>", 1)
        + f"<h3>Does trying several optimizers at their defaults match tuning one?</h3><ul>{valley}</ul>"
    )
