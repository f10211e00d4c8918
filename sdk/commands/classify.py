"""``edgesmith classify``: top-k labels for image files, with labels from the model's metadata."""

from __future__ import annotations

import json

import click


@click.command("classify")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def command(model, images, top_k, threads, as_json):
    """Classify IMAGES with MODEL (.tflite); labels and preprocessing come from its metadata."""
    from edgesmith.runtime import Classifier

    classifier = Classifier(model, threads=threads, top_k=top_k)
    results = []
    for image in images:
        top, timings = classifier.classify_timed(image)
        results.append({"image": image, "top": [{"label": label, "score": score} for label, score in top], **timings})
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for result in results:
        best = ", ".join(f"{t['label']} {t['score']:.3f}" for t in result["top"])
        click.echo(f"{result['image']}: {best}  ({result['invoke_ms']:.2f} ms invoke)")
