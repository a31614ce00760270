"""Tables (markdown) and plots (PNG) of a suite's results, one page per suite."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from offchain.errors import ConfigError
from offchain.experiments.rules import AGGREGATORS
from offchain.experiments.scenario import ScenarioResult

__all__ = ["write_report"]


def _fmt(result: ScenarioResult) -> str:
    if result.metric == "mae":
        return f"{result.final:.2f}"
    return f"{100 * result.final:.1f}"


def _unit(results: list[ScenarioResult]) -> str:
    return "test MAE (mpg, lower is better)" if results[0].metric == "mae" else "test accuracy (%)"


def _plot(path: Path, draw) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw(plt)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _dp(results: list[ScenarioResult], out: Path, stem: str) -> list[str]:
    runs: dict[int, dict[str, list[ScenarioResult]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        runs[r.scenario["nodes"]]["dp" if r.scenario["epsilon"] else "plain"].append(r)
    seeds = len({r.scenario["seed"] for r in results})
    lines = [f"Final test accuracy (%), mean of {seeds} seed(s) (range in brackets).", "",
             "| nodes | no DP | ε = 10 | DP cost (points) | ε spent | σ |",
             "|---:|---:|---:|---:|---:|---:|"]

    def cell(group: list[ScenarioResult]) -> str:
        finals = [100 * r.final for r in group]
        if len(finals) == 1:
            return f"{finals[0]:.1f}"
        return f"{_mean(finals):.1f} ({min(finals):.1f}–{max(finals):.1f})"

    for n, pair in sorted(runs.items()):
        plain, dp = pair.get("plain"), pair.get("dp")
        if not plain or not dp:
            continue
        cost = 100 * (_mean([r.final for r in plain]) - _mean([r.final for r in dp]))
        lines.append(f"| {n} | {cell(plain)} | {cell(dp)} | {cost:.1f} | "
                     f"{max(r.epsilon for r in dp):.2f} | {dp[0].noise_multiplier:.2f} |")

    def draw(plt):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for index, (n, pair) in enumerate(sorted(runs.items())):
            for kind, style in (("plain", "-"), ("dp", "--")):
                if kind in pair:
                    curves = [r.curve for r in pair[kind]]
                    curve = [100 * _mean(list(v)) for v in zip(*curves)]
                    label = f"{n} nodes, {'no DP' if kind == 'plain' else 'ε = 10'}"
                    ax.plot(range(len(curve)), curve, style, color=f"C{index}", label=label)
        ax.set_xlabel("round")
        ax.set_ylabel("test accuracy (%), mean over seeds")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return fig

    _plot(out / f"{stem}.png", draw)
    return lines + ["", f"![accuracy per round]({stem}.png)"]


def _order(key: tuple[str, int]) -> int:
    """Clean rows first, then by number of attackers."""
    return key[1]


def _grid(results: list[ScenarioResult], out: Path, stem: str, title: str) -> list[str]:
    cells: dict[tuple[str, int], dict[str, list[ScenarioResult]]] = defaultdict(
        lambda: defaultdict(list))
    for r in results:
        s = r.scenario
        clean = "none" if s["epsilon"] is not None else "none, no DP"
        cells[(s["attack"] or clean, s["attackers"])][s["aggregator"]].append(r)
    aggregators = [a for a in AGGREGATORS if any(a in row for row in cells.values())]
    seeds = len({r.scenario["seed"] for r in results})
    scale = 1 if results[0].metric == "mae" else 100
    digits = 2 if results[0].metric == "mae" else 1

    def mean(group: list[ScenarioResult]) -> float:
        return scale * _mean([r.final for r in group])

    def cell(group: list[ScenarioResult]) -> str:
        if len(group) == 1:
            return _fmt(group[0])
        lo, hi = (scale * f(r.final for r in group) for f in (min, max))
        return f"{mean(group):.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"

    averaged = f", mean of {seeds} seeds (range)" if seeds > 1 else ""
    lines = [f"{title}: {_unit(results)} after the last round{averaged}.", "",
             "| attack | attackers | " + " | ".join(aggregators)
             + " | PoQ: attackers accepted (last round) / eliminated |",
             "|---|---:|" + "---:|" * len(aggregators) + "---|"]
    for (attack, count), row in sorted(cells.items(), key=lambda kv: (_order(kv[0]), kv[0])):
        values = " | ".join(cell(row[a]) if a in row else "" for a in aggregators)
        poq = row.get("poq")
        caught = (f"{_mean([r.attackers_accepted[-1] for r in poq]):.3g} / "
                  f"{_mean([r.eliminated_attackers for r in poq]):.3g}" if poq and count else "")
        lines.append(f"| {attack} | {count} | {values} | {caught} |")

    def draw(plt):
        import numpy as np

        keys = sorted(cells, key=lambda k: (_order(k), k))
        fig, ax = plt.subplots(figsize=(max(7, 0.9 * len(keys)), 4.2))
        width = 0.8 / len(aggregators)
        x = np.arange(len(keys))
        for i, agg in enumerate(aggregators):
            ys = [mean(cells[k][agg]) if agg in cells[k] else np.nan for k in keys]
            ax.bar(x + i * width - 0.4 + width / 2, ys, width, label=agg)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{a}\n×{c}" if c else a for a, c in keys], fontsize=7)
        ax.set_ylabel(_unit(results) + (" (mean over seeds)" if seeds > 1 else ""))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, ncol=len(aggregators), loc="upper center",
                  bbox_to_anchor=(0.5, -0.16))
        return fig

    _plot(out / f"{stem}.png", draw)
    return lines + ["", f"![{title}]({stem}.png)"]


_Page = tuple[str, list[str]]
"""A suite's page: its title and the lines of its body."""


def _dp_table(results: list[ScenarioResult], out: Path) -> _Page:
    """Title and body of the dp suite's page (DP cost per node count, one plot)."""
    rounds = results[0].scenario["rounds"]
    return (f"Accuracy per round, DP vs no DP ({rounds} rounds, IID)",
            _dp(results, out, "dp"))


def _noniid_table(results: list[ScenarioResult], out: Path) -> _Page:
    """Title and body of the noniid suite's page: one grid and plot per α."""
    body: list[str] = []
    for alpha in sorted({r.scenario["alpha"] for r in results}, reverse=True):
        subset = [r for r in results if r.scenario["alpha"] == alpha]
        stem = f"noniid-alpha{alpha:g}".replace(".", "_")
        body += _grid(subset, out, stem, f"Dirichlet α = {alpha:g}") + [""]
    return f"Non-IID data, {results[0].scenario['nodes']} nodes, ε = 10", body


def _attacks_table(results: list[ScenarioResult], out: Path) -> _Page:
    """Title and body of the attacks suite's page."""
    nodes = results[0].scenario["nodes"]
    return (f"Attacks, {nodes} nodes, IID, ε = 10",
            _grid(results, out, "attacks", "attacks"))


def _regression_table(results: list[ScenarioResult], out: Path) -> _Page:
    """Title and body of the regression suite's page."""
    nodes = results[0].scenario["nodes"]
    return (f"Regression (Auto-MPG), {nodes} nodes, ε = 10",
            _grid(results, out, "regression", "regression"))


_TABLES: Mapping[str, Callable[[list[ScenarioResult], Path], _Page]] = MappingProxyType(
    {"dp": _dp_table, "attacks": _attacks_table, "noniid": _noniid_table,
     "regression": _regression_table})
"""Each suite's page, by the suite's name."""


def write_report(suite: str, results: list[ScenarioResult], out: Path) -> Path:
    """Writes ``<suite>.md`` (and its PNG plots) under ``out``; returns the markdown
    path. Raises ConfigError for a suite without a table, and I/O errors."""
    table = _TABLES.get(suite)
    if table is None:
        raise ConfigError(
            f"no table for suite {suite!r}; choose from {', '.join(_TABLES)}")
    out.mkdir(parents=True, exist_ok=True)
    title, body = table(results, out)
    seconds = sum(r.seconds for r in results)
    text = "\n".join([f"# {title}", "",
                      f"{len(results)} runs, {seconds / 60:.1f} CPU minutes; regenerate with "
                      f"`fedshare experiment {suite}`.", "", *body, ""])
    path = out / f"{suite}.md"
    path.write_text(text)
    return path
