"""``edgesmith inspect``: what is inside a .tflite (sizes, quantization, ops, weights, XNNPACK, metadata, MACs)."""

from __future__ import annotations

import json

import click


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--no-xnnpack", is_flag=True, help="Skip loading the model to see which ops XNNPACK takes.")
@click.option("--weights", "show_weights", is_flag=True, help="List every weight tensor (sparsity, unique values).")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def command(model, no_xnnpack, show_weights, as_json):
    """Show the size split, dtypes, quantization, op histogram, weight sparsity,
    XNNPACK delegation, edgesmith metadata and MACs of MODEL (.tflite)."""
    from edgesmith.inspect import inspect_model

    report = inspect_model(model, xnnpack=not no_xnnpack)
    click.echo(json.dumps(report, indent=2, default=str) if as_json else format_report(report, show_weights))


def _kib(size: int) -> str:
    return f"{size / 1024:.1f} KiB"


def _counts(histogram: dict) -> str:
    return ", ".join(f"{name} x{count}" for name, count in histogram.items()) or "none"


def format_report(report: dict, show_weights: bool = False) -> str:
    """A readable summary of :func:`edgesmith.inspect.inspect_model`'s result."""
    size = report["size"]
    weights = report["weights"]
    stored = sum(w["bytes"] for w in weights)
    zeros = sum(w["bytes"] * (w["sparsity"] or 0) for w in weights)
    lines = [
        f"model      {report['path']}",
        f"size       {_kib(size['total_bytes'])} as stored: weights {_kib(size['weights_bytes'])}, "
        f"graph {_kib(size['graph_bytes'])}, metadata {_kib(size['metadata_bytes'])}; gzip {_kib(size['gzip_bytes'])}",
        *(f"input      {t['name']} {t['shape']} {t['dtype']} {t['quantization'] or ''}" for t in report["inputs"]),
        *(f"output     {t['name']} {t['shape']} {t['dtype']} {t['quantization'] or ''}" for t in report["outputs"]),
        f"dtypes     {_counts(report['tensors']['dtypes'])}",
        f"quantized  weights: {_counts(report['quantization']['weights'])}; activations: {_counts(report['quantization']['activations'])}",
        f"weights    {len(weights)} tensors, {100 * zeros / stored if stored else 0:.1f}% zeros by bytes, "
        f"at most {max((w['unique_values'] or 0 for w in weights), default=0)} unique values in one tensor",
        f"ops        {_counts(report['ops'])}",
        f"MACs       {report['macs']:,}" if report["macs"] is not None else "MACs       unknown",
        _xnnpack_line(report["xnnpack"]),
        f"metadata   {json.dumps(report['metadata']) if report['metadata'] else 'none'}",
    ]
    if show_weights:
        lines += [f"  {w['name']} {w['shape']} {w['dtype']} {w['bytes']} B sparsity {w['sparsity']} unique {w['unique_values']}"
                  for w in weights]
    return "\n".join(lines)


def _xnnpack_line(xnnpack: dict | None) -> str:
    if xnnpack is None:
        return "XNNPACK    not checked"
    if not xnnpack["available"]:
        return f"XNNPACK    unknown ({xnnpack['reason']})"
    return (f"XNNPACK    {100 * xnnpack['delegated_fraction']:.0f}% of ops in {xnnpack['delegate_nodes']} delegate node(s); "
            f"falls back: {_counts(xnnpack['fallback_ops'])}")
