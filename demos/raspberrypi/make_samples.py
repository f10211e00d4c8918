"""Write the demo's sample images: real digits and real photos, no network.

Ten handwritten digits come from scikit-learn's ``load_digits`` (one per class,
held out from the training set that ``make_model.py`` uses), rendered white on
black like the model's training images. Three photos come from scikit-image's
sample data, scaled down, one as JPEG, to exercise colour conversion and
decoding. Run it on a host with scikit-learn and scikit-image::

    python demos/raspberrypi/make_samples.py            # -> demos/raspberrypi/samples/

The files are committed, so a Raspberry Pi never needs to run this.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DIGIT_SIZE = 64  # sample PNGs; the model resizes them to its own input size
PHOTOS = {"camera": "png", "coffee": "jpg", "astronaut": "jpg"}
PHOTO_SIZE = 128


def render_digit(pixels: np.ndarray, size: int) -> Image.Image:
    """One 8x8 ``load_digits`` image (values 0-16) as a ``size`` x ``size`` grey image."""
    grey = np.clip(np.asarray(pixels, dtype=np.float32).reshape(8, 8) * (255.0 / 16.0), 0, 255)
    return Image.fromarray(grey.astype(np.uint8), mode="L").resize((size, size), Image.BILINEAR)


def held_out_indices(targets: np.ndarray) -> list:
    """The last example of each class: the samples, which training leaves out."""
    return [int(np.flatnonzero(targets == digit)[-1]) for digit in range(10)]


def write_digits(out: Path) -> list:
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for index in held_out_indices(digits.target):
        path = out / f"digit-{digits.target[index]}.png"
        render_digit(digits.images[index], DIGIT_SIZE).save(path, optimize=True)
        paths.append(path)
    return paths


def write_photos(out: Path) -> list:
    import skimage.data

    paths = []
    for name, extension in PHOTOS.items():
        image = Image.fromarray(getattr(skimage.data, name)())
        image.thumbnail((PHOTO_SIZE, PHOTO_SIZE))
        path = out / f"photo-{name}.{extension}"
        options = {"quality": 85} if extension == "jpg" else {"optimize": True}
        image.save(path, **options)
        paths.append(path)
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "samples", help="folder to write (default: samples/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = write_digits(args.out) + write_photos(args.out)
    total = sum(path.stat().st_size for path in paths)
    print(f"wrote {len(paths)} images ({total / 1024:.0f} KB) to {args.out}")


if __name__ == "__main__":
    main()
