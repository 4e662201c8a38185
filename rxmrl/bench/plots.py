"""Benchmark plots (matplotlib, Agg backend: no display needed): retention per step and latency per turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rxmrl.atomic import atomic_file


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        from rxmrl.errors import ConfigError

        raise ConfigError("plots need matplotlib: pip install 'rxmrl[plot]' (or leave out --plot)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _steps(values: list[float | None]) -> tuple[list[int], list[float]]:
    """1-based steps and values, without the steps that have no value."""
    pairs = [(k, v) for k, v in enumerate(values, start=1) if v is not None]
    return [k for k, _ in pairs], [v for _, v in pairs]


def plot_retention(results: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """Per-step mean reward and per-step fact recall, one line per system (the `run_retention` result)."""
    plt = _pyplot()
    fig, (reward_ax, recall_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in results.items():
        x, y = _steps(r["per_step"])
        reward_ax.plot(x, y, marker="o", label=f"{name} (mean {r['mean']:.2f})" if r["mean"] is not None else name)
        x, y = _steps(r.get("per_step_fact_recall", []))
        if y:
            recall_ax.plot(x, y, marker="o", label=name)
    highest = max((v for r in results.values() for v in r["per_step"] if v is not None), default=0.0)
    reward_ax.set(title="Reward per follow-up", xlabel="follow-up step", ylabel="mean reward",
                  ylim=(0, max(10.0, highest * 1.05)))  # the built-in rewards score 0-10
    recall_ax.set(title="Fact recall per follow-up", xlabel="follow-up step", ylabel="fact recall F1",
                  ylim=(0, 1.02))
    for ax in (reward_ax, recall_ax):
        _integer_ticks(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, plt, path)


def plot_latency(results: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """Prompt-phase and generation latency per turn, one line per system (the latency benchmark's result);
    the RxT's asynchronous memory update is drawn dashed on the prompt panel."""
    plt = _pyplot()
    fig, (prompt_ax, generate_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in results.items():
        turns = list(range(1, len(r["prompt_ms"]) + 1))
        prompt_ax.plot(turns, r["prompt_ms"], marker="o", label=f"{name} prompt")
        generate_ax.plot(turns, r["generate_ms"], marker="o", label=f"{name} generation")
        if "update_ms" in r:
            prompt_ax.plot(turns, r["update_ms"], linestyle="--", label=f"{name} memory update (async)")
    prompt_ax.set(title="Prompt phase per turn", xlabel="turn", ylabel="ms (median)")
    generate_ax.set(title="Answer generation per turn", xlabel="turn", ylabel="ms (median)")
    for ax in (prompt_ax, generate_ax):
        _integer_ticks(ax)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, plt, path)


def plot_gain(report: dict[str, Any], path: Path) -> Path:
    """One panel per episode set: each comparison's mean gain in mean reward and fact recall, with 95% CIs."""
    plt = _pyplot()
    sets = list(report["gains"])
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 3.5), squeeze=False)
    for ax, set_name in zip(axes[0], sets):
        gains = report["gains"][set_name]
        for offset, metric in ((-0.2, "mean"), (0.2, "last_step")):
            xs, ys, errs = [], [], []
            for i, by_metric in enumerate(gains.values()):
                value = by_metric.get(metric)
                if value is None:
                    continue
                xs.append(i + offset)
                ys.append(value["mean"])
                errs.append(0.0 if value["ci95"] is None else value["ci95"][1] - value["mean"])
            ax.bar(xs, ys, width=0.4, yerr=errs, capsize=3, label=f"{metric.replace('_', ' ')} reward")
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(gains)), list(gains), fontsize=8)
        ax.set_title(set_name)
        ax.set_ylabel("gain (reward points, 95% CI)")
        ax.legend(fontsize=8)
    return _save(fig, plt, path)


def _integer_ticks(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(fig: Any, plt: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with atomic_file(path) as tmp:  # a kill mid-write must not leave a half PNG that reruns would keep
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path
