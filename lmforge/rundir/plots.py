"""PNG plots for the report, drawn headless with matplotlib's Agg backend (imported when a plot is
drawn: it costs about a second of every lmforge process's start-up otherwise)."""

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def line_plot(
    path: str | Path,
    series: dict[str, tuple[list[float], list[float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
) -> Path:
    """One figure with a line per named (x, y) series; returns the written path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for name, (xs, ys) in series.items():
        if xs:
            ax.plot(xs, ys, label=name, marker="o" if len(xs) < 20 else None)
    if logx:  # symlog keeps x = 0 (e.g. the untrained checkpoint) on the axis
        positive = [x for xs, _ in series.values() for x in xs if x > 0]
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


LANGUAGE_COLOURS = ["#3b75af", "#4f9a55", "#c44e52", "#8172b2", "#ccb974"]


def grouped_bars(path: str | Path, groups: dict[str, dict[str, float]], ylabel: str, title: str) -> Path:
    """Bars per group (e.g. a model), one colour per key (e.g. a language), side by side."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for g in groups.values() for k in g))
    width = 0.8 / max(1, len(keys))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(groups) + 2), 3.6), dpi=110)
    for j, key in enumerate(keys):
        xs = [i + j * width for i in range(len(groups))]
        ax.bar(
            xs,
            [g.get(key, 0.0) for g in groups.values()],
            width,
            label=key,
            color=LANGUAGE_COLOURS[j % len(LANGUAGE_COLOURS)],
        )
    ax.set_xticks([i + width * (len(keys) - 1) / 2 for i in range(len(groups))], list(groups))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if keys:  # no bars at all (nothing detected) is an empty chart, not an error
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(keys), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
