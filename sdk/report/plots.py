"""The report's figures, drawn with matplotlib (Agg, no display) and returned as PNG bytes."""

from __future__ import annotations

import io

import numpy as np

FIGSIZE = (7.5, 4.2)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(figure) -> bytes:
    """``figure`` as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(figure)
    return buffer.getvalue()


def latency_cdf(variants: list) -> bytes:
    """Cumulative distribution of steady-state invoke latency, one line per variant."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=FIGSIZE)
    for variant in variants:
        values = np.sort(np.asarray(variant.latencies_ms, dtype=float))
        if values.size == 0:
            continue
        share = np.arange(1, values.size + 1) / values.size
        p50 = variant.summary["latency_ms"]["p50"]
        axis.step(values, share, where="post", label=f"{variant.label} (p50 {p50:.3g} ms)")
    lows = [min(v.latencies_ms) for v in variants if v.latencies_ms]
    highs = [max(v.latencies_ms) for v in variants if v.latencies_ms]
    if lows and min(lows) > 0 and max(highs) / min(lows) > 20:
        axis.set_xscale("log")
    for level in (0.5, 0.9, 0.99):
        axis.axhline(level, color="0.85", linewidth=0.8, zorder=0)
    axis.set_xlabel("invoke latency (ms)")
    axis.set_ylabel("fraction of runs")
    axis.set_ylim(0, 1.01)
    axis.set_title("Latency CDF per variant")
    axis.legend(fontsize=8, loc="lower right")
    axis.grid(alpha=0.3)
    return png_bytes(figure)


def pareto(variants: list) -> bytes:
    """Accuracy (or size, when no accuracy is known) against p50 latency.

    Marker area grows with model size; colour shows mJ per inference where a
    meter measured it (grey rings: energy unavailable). The line joins the
    Pareto-optimal variants.
    """
    plt = pyplot()
    figure, axis = plt.subplots(figsize=FIGSIZE)
    with_accuracy = any(v.accuracy is not None for v in variants)
    points = [(v, v.summary["latency_ms"]["p50"], _y_value(v, with_accuracy)) for v in variants]
    points = [(v, x, y) for v, x, y in points if y is not None]
    sizes = np.array([v.size_bytes or 0 for v, _, _ in points], dtype=float)
    areas = 40 + 360 * sizes / sizes.max() if points and sizes.max() > 0 else np.full(len(points), 60.0)
    _scatter_energy(figure, axis, points, areas)
    for variant, x, y in points:
        axis.annotate(variant.label, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=7)
    frontier = _frontier([(x, y) for _, x, y in points], maximize_y=with_accuracy)
    if len(frontier) > 1:
        axis.plot(*zip(*frontier), color="tab:red", linewidth=1, linestyle="--", label="Pareto front")
        axis.legend(fontsize=8)
    axis.set_xlabel("p50 invoke latency (ms)")
    axis.set_ylabel("accuracy (%)" if with_accuracy else "model size (KiB)")
    axis.set_title("Accuracy vs latency (marker area: size)" if with_accuracy else "Size vs latency (no accuracy in the logs)")
    axis.grid(alpha=0.3)
    return png_bytes(figure)


def _y_value(variant, with_accuracy: bool):
    if with_accuracy:
        return None if variant.accuracy is None else 100 * variant.accuracy
    return None if variant.size_bytes is None else variant.size_bytes / 1024


def _scatter_energy(figure, axis, points: list, areas) -> None:
    measured = [i for i, (v, _, _) in enumerate(points) if v.energy_mj is not None]
    unmeasured = [i for i in range(len(points)) if i not in measured]
    if unmeasured:
        axis.scatter([points[i][1] for i in unmeasured], [points[i][2] for i in unmeasured], s=areas[unmeasured],
                     facecolors="none", edgecolors="0.5", label="energy unavailable")
    if measured:
        dots = axis.scatter([points[i][1] for i in measured], [points[i][2] for i in measured], s=areas[measured],
                            c=[points[i][0].energy_mj for i in measured], cmap="viridis", edgecolors="black")
        figure.colorbar(dots, ax=axis, label="mJ per inference")


def _frontier(points: list, maximize_y: bool) -> list:
    """Points not beaten on both latency (lower) and y (higher accuracy or lower size)."""
    best, frontier = None, []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1] if maximize_y else p[1])):
        if best is None or (y > best if maximize_y else y < best):
            frontier.append((x, y))
            best = y
    return frontier


def layer_snr(debug_report: dict) -> bytes:
    """Bars of each layer's SNR (dB) from ``edgesmith debug``, in model order: what the layer's own error costs the
    model's output (the ranking), that error at the layer (local, per channel), and the error accumulated up to it.
    Lower is worse; the dashed line marks 30 dB."""
    rows = sorted(debug_report["layers"], key=lambda row: row["order"])
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(max(FIGSIZE[0], 0.55 * len(rows) + 2), FIGSIZE[1]))
    positions = np.arange(len(rows))
    def figure_of(key: str) -> list:
        return [np.nan if row.get(key) is None else row[key] for row in rows]

    axis.bar(positions - 0.27, figure_of("output_snr_db"), 0.27, label="its error alone, at the model output")
    axis.bar(positions, figure_of("local_channel_snr_db"), 0.27, label="added by the layer (local)")
    axis.bar(positions + 0.27, figure_of("channel_snr_db"), 0.27, label="accumulated up to it")
    axis.axhline(30, color="0.5", linestyle="--", linewidth=0.8)
    axis.set_xticks(positions, [row["layer"] for row in rows], rotation=45, ha="right", fontsize=7)
    axis.set_ylabel("SNR per channel (dB, higher is better)")
    axis.set_title("Quantization error by layer")
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=8)
    return png_bytes(figure)
