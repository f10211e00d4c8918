"""Peak memory of `edgesmith convert` as the dataset grows: the data path must stream.

keras.applications MobileNetV2 (alpha 1.0, 2.2 M parameters, weights=None) at 224 x 224,
its BatchNorm statistics re-estimated and its classifier fitted on MNIST digits (resized and
tiled to RGB) so that the source model reads the data (edgesmith refuses one at chance), then
`edgesmith convert` with int8-ptq and int8-qat on a uint8 `.npz` of N images (80 % training,
20 % evaluation), each run in its own process. Peak RSS is that process's ru_maxrss.

Linux carries a process's peak RSS across fork and exec: a child's ru_maxrss is at least its parent's peak
at the time it was started (a 3 GB parent gives a `python -c pass` child 2.96 GB). So this script keeps its
own process small: the images are written and the source model trained in a child process of their own
(`--prepare`; a memory map's touched pages count too), and the script's peak is
printed beside the measurements (a session-7 run that trained the source in this process reported its
6.7 GB training peak as int8-qat's).

Goal (issue 12): peak RSS <= 4 GB at 224 px, growing by less than 10 % from 640 to 5,000
images, with wall time per image no worse than before (the issue's table: 640 images at
224 px peaked at 13.1 GB with int8-ptq and 18.3 GB with int8-qat).

Run:  TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/memory.py [--sizes 640,5000] [--recipes int8-ptq,int8-qat]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist.npz"
SIZE = 224


def write_images(path: Path, count: int, seed: int = 0) -> Path:
    """``count`` MNIST digits as uint8 224 x 224 x 3 images in an uncompressed .npz (x, y), written in chunks
    (kept from an earlier run in the same --work folder)."""
    from PIL import Image

    if path.is_file():
        return path
    with np.load(MNIST) as mnist:
        picked = np.random.default_rng(seed).permutation(len(mnist["y_train"]))[:count]
        digits, labels = mnist["x_train"][picked], mnist["y_train"][picked]
    raw = path.with_suffix(".x.npy")
    images = np.lib.format.open_memmap(raw, mode="w+", dtype=np.uint8, shape=(count, SIZE, SIZE, 3))
    for i, digit in enumerate(digits):
        images[i] = np.asarray(Image.fromarray(digit).resize((SIZE, SIZE)))[..., None]
    images.flush()
    del images
    _zip_npz(path, {"x.npy": raw}, {"y": labels.astype(np.int64)})
    raw.unlink()
    return path


def _zip_npz(path: Path, files: dict, arrays: dict) -> None:
    """An uncompressed .npz from .npy files on disk (streamed) plus small arrays (what np.savez writes)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, file in files.items():
            archive.write(file, name)
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(f"{name}.npy", buffer.getvalue())


def source_model(path: Path, data: Path, samples: int = 640) -> Path:
    """MobileNetV2 whose BatchNorm statistics come from real batches and whose head is fitted on them."""
    import keras

    if path.is_file():  # trained by an earlier run in the same --work folder
        return path
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(alpha=1.0, weights=None, input_shape=(SIZE, SIZE, 3), classes=10)
    with np.load(data) as npz:
        x = npz["x"][:samples].astype(np.float32) / 127.5 - 1.0
        y = npz["y"][:samples]
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # the next training-mode call sets the statistics to that batch's
    model(x[:64], training=True)
    for layer in model.layers:
        layer.trainable = layer is model.layers[-1]
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    for layer in model.layers:
        layer.trainable = True
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.99
    model.save(path)
    return path


def measure(model: Path, data: Path, recipe: str, out: Path) -> dict:
    """One `edgesmith convert` in its own process: peak RSS (its ru_maxrss) and wall time."""
    argv = [sys.executable, "-m", "edgesmith", "convert", str(model), "--recipe", recipe, "--data", str(data),
            "--preprocess", "tf", "--out", str(out), "--json", "--quiet"]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output, tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(argv, stdout=output, stderr=errors, text=True)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS, not the largest child's so far
        wall = time.perf_counter() - started
        output.seek(0), errors.seek(0)
        printed, complaints = output.read(), errors.read()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"convert failed ({code}): {complaints.strip().splitlines()[-1:]}")
    peak = usage.ru_maxrss * 1024
    report = json.loads(printed)
    return {"peak_rss_gb": peak / 1e9, "wall_s": wall, "tflite_accuracy": report["tflite_accuracy"],
            "source_accuracy": report["source_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="640,5000", help="dataset sizes (images), comma-separated")
    parser.add_argument("--recipes", default="int8-ptq,int8-qat")
    parser.add_argument("--work", default=None, help="folder for data and outputs (default: a temp folder)")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)  # the child that writes the inputs
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="edgesmith-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    datasets = {n: work / f"digits{n}.npz" for n in sizes}
    model = work / "mobilenet_v2.keras"
    if args.prepare:
        for n, path in datasets.items():
            write_images(path, n)
        source_model(model, datasets[sizes[0]])
        return
    subprocess.run([sys.executable, __file__, "--prepare", "--work", str(work), "--sizes", args.sizes], check=True)
    rows = []
    for recipe in args.recipes.split(","):
        for n in sizes:
            result = measure(model, datasets[n], recipe, work / f"out-{recipe}-{n}")
            rows.append({"recipe": recipe, "images": n, **result})
            print(f"{recipe:9} {n:6,} images: peak RSS {result['peak_rss_gb']:.2f} GB, {result['wall_s']:.0f} s "
                  f"({1000 * result['wall_s'] / n:.0f} ms/image), source {100 * result['source_accuracy']:.1f}%, "
                  f"tflite {100 * result['tflite_accuracy']:.1f}%", flush=True)
    for recipe in args.recipes.split(","):
        peaks = [r["peak_rss_gb"] for r in rows if r["recipe"] == recipe]
        print(f"{recipe}: peak RSS grows {100 * (peaks[-1] / peaks[0] - 1):+.1f}% from {sizes[0]:,} to "
              f"{sizes[-1]:,} images (goal < 10 %); largest {max(peaks):.2f} GB (goal <= 4 GB)")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(f"this script's own peak RSS: {own:.2f} GB (a child's peak is at least this; see the docstring)")
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
