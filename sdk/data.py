"""Training, evaluation and calibration data for the converters, from one spec string.

>>> from edgesmith.data import load_data
>>> data = load_data("builtin:digits")            # scikit-learn's 8x8 digits, offline
>>> data.x_train.shape[1:], data.num_classes
((8, 8, 1), 10)

A spec is one of:

* ``builtin:digits`` (scikit-learn, offline), ``builtin:mnist``,
  ``builtin:fashion_mnist``, ``builtin:cifar10`` (``keras.datasets``: cached in
  ``~/.keras/datasets``, downloaded where a network exists);
* ``DIR`` with one sub-folder of images per class (labels = folder names);
* ``DIR`` holding images only (unlabeled: calibration data for int8);
* ``FILE.npz`` with ``x``/``y`` or ``x_train``/``y_train``/``x_test``/``y_test``
  (optional ``labels``).

Images (integer ``[N, H, W]`` or ``[N, H, W, C]`` arrays, image files) become float32
``(pixel - mean) / std`` arrays, [N, H, W, C], with the
:class:`~edgesmith.preprocessing.Preprocessing` given (default 0..1); the same
preprocessing is written into the .tflite metadata so that devices repeat it.
Float image arrays are taken as already normalized that way. Arrays whose samples
are not images (sequences ``[N, T, F]``, tabular ``[N, F]``; an ``input_shape`` that
matches the array says so) are fed as stored, float as float32, integers (token ids)
as they are. Empty splits and non-finite values are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgesmith.preprocessing import InputContractError, Preprocessing, choose_preprocessing, preprocessing_from
from edgesmith.converters.metrics import METRICS, is_anomaly_labels, is_class_ids, is_probability_rows, reconstructs
from edgesmith.samples import Samples, array_source, open_npz
from edgesmith.runtime.bench import IMAGE_SUFFIXES
from edgesmith.runtime.errors import InputError

BUILTINS = ("digits", "mnist", "fashion_mnist", "cifar10")
_BUILTIN_LABELS = {
    "fashion_mnist": ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


class DataError(InputError):
    """A data spec that cannot be read (missing folder, bad .npz, no images...)."""


class ShapeMismatchError(InputError):
    """The data's sample shape differs from the model's input shape (both are shown)."""


class LabelCountError(InputError):
    """The data has a different number of classes than the model has outputs."""


@dataclass
class Dataset:
    """The training and evaluation splits plus what a device needs to repeat the preprocessing.

    ``x_*`` are :class:`~edgesmith.samples.Samples`: indexing them (``x_val[0:64]``) reads and
    normalizes that batch only. ``y_*`` are integer class indices of a model with one classifier output,
    or None for unlabeled (calibration-only) data and for ``targets``: per output name, ``(train, val)``
    targets of any other kind (regression values, segmentation maps, the heads of a model with several outputs),
    which verification scores with :mod:`edgesmith.converters.metrics`.
    """

    x_train: Samples
    y_train: np.ndarray | None
    x_val: Samples
    y_val: np.ndarray | None
    labels: list
    preprocessing: dict
    source: str
    batch_size: int = 32
    split: dict = field(default_factory=dict)
    contract: Preprocessing | None = None  # how pixels were normalized (None: arrays fed as stored)
    targets: dict = field(default_factory=dict)  # output name -> (train, val) targets other than one classifier's ids
    metrics: dict = field(default_factory=dict)  # output name -> metric chosen for its targets (else the default)
    budgets: dict = field(default_factory=dict)  # output name -> budget chosen with its metric, in the metric's units

    @property
    def labeled(self) -> bool:
        """True when the data has class labels (needed to train and to measure accuracy)."""
        return self.y_val is not None

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def sample_shape(self) -> tuple:
        return tuple(self.x_val.shape[1:])

    def choosing(self, metrics: dict) -> "Dataset":
        """This data with ``{output: "metric"}`` or ``{output: "metric:budget"}`` choices (see
        :func:`metric_choice`)."""
        chosen = {name: metric_choice(text) for name, text in metrics.items()}
        return replace(self, metrics={**self.metrics, **{name: m for name, (m, _) in chosen.items()}},
                                   budgets={**self.budgets, **{name: b for name, (_, b) in chosen.items()
                                                               if b is not None}})

    def calibration(self, count: int = 256, seed: int = 0) -> np.ndarray:
        """Up to ``count`` training samples, for int8 activation ranges."""
        pool = self.x_train if len(self.x_train) else self.x_val
        return pool[_pick(len(pool), count, seed)]

    def check_model(self, model) -> None:
        """Raise a clear error if ``model`` (a Keras model) cannot take this data: one input of the data's shape;
        labelled data scores one [batch, classes] output with that many classes (unlabelled data verifies any
        outputs by their fidelity to the source model)."""
        if len(model.inputs) != 1:
            raise ShapeMismatchError(f"the model has {len(model.inputs)} inputs ({', '.join(_names(model, 'input'))}); "
                                     "edgesmith feeds one array x: wrap it to take one input")
        check_shapes(tuple(model.inputs[0].shape[1:]), self.sample_shape, self.source)
        outputs = output_shapes(model)
        for name, (train, _) in self.targets.items():
            if name not in outputs:
                raise DataError(f"{self.source}: targets of {name}, which is no output of the model (its outputs: "
                                f"{', '.join(outputs)})")
            _check_fits(train, outputs[name], f"{self.source}: targets of {name}")
        for name, metric in self.metrics.items():
            _check_metric(name, metric, self.targets.get(name, (None,))[0], outputs.get(name))
        if not self.labeled:
            return
        if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
            shapes = ", ".join(f"{name} {list(t.shape)}" for name, t in zip(_names(model, "output"), model.outputs))
            raise ShapeMismatchError(
                f"{self.source} has class labels, which score one [batch, classes] output, but the model outputs "
                f"{shapes}; give the data without labels (x_train/x_test only, or a folder of images) to verify "
                "every output by its fidelity to the source model")
        outputs = model.outputs[0].shape[-1]
        if outputs != self.num_classes:
            highest = max(int(y.max()) for y in (self.y_train, self.y_val) if y is not None and len(y))
            over = (f" (its largest label is {highest}: class ids run from 0 to {outputs - 1})" if highest >= outputs
                    else "")
            raise LabelCountError(f"{self.source} has {self.num_classes} classes but the model has {outputs} "
                                  f"outputs{over}")

    def describe(self) -> dict:
        """What the metadata records about the data: source, split, batching, preprocessing."""
        return {
            "source": self.source,
            "train_samples": int(len(self.x_train)),
            "val_samples": int(len(self.x_val)),
            "batch_size": self.batch_size,
            "split": self.split,
            "preprocessing": self.preprocessing,
        }


def output_shapes(model) -> dict:
    """``{output name: sample shape}`` of a Keras model, in its output order."""
    return {name: tuple(tensor.shape[1:]) for name, tensor in zip(_names(model, "output"), model.outputs)}


def _names(model, role: str) -> list:
    tensors = getattr(model, f"{role}s")
    return getattr(model, f"{role}_names", None) or [getattr(t, "name", "?") for t in tensors]


def check_shapes(model_shape: tuple, data_shape: tuple, source: str = "data") -> None:
    """Raise :class:`ShapeMismatchError` showing both shapes unless they agree (None = any)."""
    if len(model_shape) != len(data_shape) or any(m is not None and m != d for m, d in zip(model_shape, data_shape)):
        raise ShapeMismatchError(f"{source} samples have shape {list(data_shape)} but the model input is "
                                 f"{['?' if m is None else m for m in model_shape]} (without the batch axis)")


def load_data(spec: str, *, image_size: tuple | None = None, color: str | None = None,
              preprocessing: Preprocessing | None = None, mean: float | list | None = None,
              std: float | list | None = None, input_shape: tuple | None = None, val_split: float = 0.2,
              batch_size: int = 32, limit: int | None = None, seed: int = 0, outputs: dict | None = None) -> Dataset:
    """Load ``spec`` (see the module docstring) as a :class:`Dataset`.

    Args:
        spec: ``builtin:NAME``, an image folder, or an ``.npz`` file.
        image_size: ``(height, width)`` to resize folder images to (default: the first image's).
        color: ``"rgb"`` or ``"grayscale"`` for folder images (default: from the first image).
        preprocessing: how pixels are normalized (see :mod:`edgesmith.preprocessing`); default 0..1.
        mean, std: shorthand for ``preprocessing``: ``input = (pixel - mean) / std``, pixels in 0..255.
        input_shape: the model's input shape without the batch axis, when known: an ``.npz`` whose
            samples already have it is taken as it is (no channel axis added).
        val_split: fraction held out for evaluation when the source has no test split.
        batch_size: batch size the training passes use (recorded in the metadata).
        limit: keep at most this many training and this many evaluation samples.
        seed: seed of the split and of the sampling.
        outputs: the model's outputs, ``{name: sample shape}``, when known: an ``.npz``'s targets are read
            against them (``y_train_<name>``, or ``y_train`` that are no class ids of one classifier output).
    """
    if not 0.0 < val_split < 1.0:
        raise DataError(f"val_split must be between 0 and 1, got {val_split}")
    explicit = preprocessing or preprocessing_from(mean=mean, std=std)
    normalize = _Normalizer(explicit or choose_preprocessing(None, None))
    x_train, y_train, x_val, y_val, split, labels, color, targets = _read(spec, image_size, color, normalize,
                                                                          val_split, seed, input_shape, outputs)
    if limit:
        train, val = _pick(len(x_train), limit, seed), _pick(len(x_val), limit, seed)
        x_train, x_val = x_train.subset(train), x_val.subset(val)
        y_train = None if y_train is None else y_train[train]
        y_val = None if y_val is None else y_val[val]
        targets = {name: (train_y[train], val_y[val]) for name, (train_y, val_y) in targets.items()}
    _check_integrity(spec, x_train, y_train, x_val, y_val)
    for name, (train, val) in targets.items():
        if (len(train), len(val)) != (len(x_train), len(x_val)):
            raise DataError(f"{spec}: targets of {name}: {len(train)} training and {len(val)} evaluation rows for "
                            f"{len(x_train)} and {len(x_val)} samples")
    if color is None and explicit is not None and explicit.origin in ("user", "recipe"):
        raise InputContractError(f"{spec} holds arrays, not images: --preprocess/--mean/--std apply to images only")
    if color is None:
        preprocessing, contract = {"input": "as stored"}, None
    else:
        normalize.check_values(x_val.shape[-1])  # float images skip the normalizer that checks integer pixels
        preprocessing = {"size": [int(x_val.shape[1]), int(x_val.shape[2])],
                         "color": "bgr" if color == "rgb" and normalize.bgr else color,
                         **normalize.preprocessing.as_dict()}
        contract = normalize.preprocessing
    return Dataset(x_train, y_train, x_val, y_val, labels, preprocessing, spec, batch_size, split, contract, targets)


def _check_integrity(spec, x_train, y_train, x_val, y_val) -> None:
    """One-line errors for empty splits, labels that do not match the samples, and NaN/inf values."""
    if len(x_val) == 0 or (len(x_train) == 0 and y_train is not None):
        raise DataError(f"{spec}: empty split ({len(x_train)} training, {len(x_val)} evaluation samples)")
    for name, x, y in (("training", x_train, y_train), ("evaluation", x_val, y_val)):
        if y is not None and len(y) != len(x):
            raise DataError(f"{spec}: {len(x)} {name} samples but {len(y)} labels")
        if np.issubdtype(x.stored_dtype, np.floating):
            bad = sum(int(np.count_nonzero(~np.isfinite(batch).reshape(len(batch), -1).all(axis=1)))
                      for batch in x.batches())
            if bad:
                raise DataError(f"{spec}: {bad} {name} sample(s) hold NaN or infinite values")


# -- readers --------------------------------------------------------------------


class _Normalizer:
    """Applies a :class:`~edgesmith.preprocessing.Preprocessing` to integer pixel arrays: [N, H, W(, C)] ->
    normalized float32 [N, H, W, C], batch by batch."""

    def __init__(self, preprocessing: Preprocessing):
        self.preprocessing = preprocessing
        self.mean = np.asarray(preprocessing.mean, dtype=np.float32)
        self.std = np.asarray(preprocessing.std, dtype=np.float32)
        self.bgr = preprocessing.channel_order == "bgr"

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = _with_channels(pixels)
        channels = pixels.shape[-1]
        self.check_values(channels)
        if self.bgr:
            if channels != 3:
                raise InputContractError(f"{self.preprocessing.name} preprocessing needs RGB images, these have "
                                         f"{channels} channel(s)")
            pixels = pixels[..., ::-1]
        return ((pixels.astype(np.float32) - self.mean) / self.std).astype(np.float32)

    def check_values(self, channels: int) -> None:
        """An :class:`InputContractError` unless mean and std have one value or one per channel of the images."""
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values.size not in (1, channels):
                raise InputContractError(
                    f"{name} has {values.size} values but the images have {channels} channel(s); give one or {channels}"
                )


def check_spec(spec: str) -> None:
    """Raise the one-line :class:`DataError` :func:`load_data` gives for a ``spec`` that names no data (an unknown
    built-in, a missing .npz, neither an .npz nor a folder), reading nothing.

    >>> check_spec("builtin:digitz")
    Traceback (most recent call last):
    edgesmith.data.DataError: unknown built-in data 'digitz'; choose one of: builtin:digits, ...
    """
    path = Path(spec)
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTINS:
            choices = ", ".join("builtin:" + b for b in BUILTINS)
            raise DataError(f"unknown built-in data {name!r}; choose one of: {choices}")
    elif path.suffix == ".npz":
        if not path.is_file():
            raise DataError(f"{path}: no such file")
    elif not path.is_dir():
        raise DataError(
            f"cannot read data {spec!r}: give builtin:{{{','.join(BUILTINS)}}}, an image folder, or an .npz file")


def _read(spec, image_size, color, normalize, val_split, seed, input_shape, outputs):
    """``(x_train, y_train, x_val, y_val, split, labels, color, targets)`` of ``spec``: ``split`` as the metadata
    records it, ``color`` None for arrays fed as stored, ``targets`` as in :class:`Dataset`."""
    check_spec(spec)
    if spec.startswith("builtin:"):
        return *_builtin(spec.split(":", 1)[1], normalize, val_split, seed), {}
    path = Path(spec)
    if path.suffix == ".npz":
        return _npz(path, normalize, val_split, seed, input_shape, outputs)
    return *_folder(path, image_size, color, normalize, val_split, seed), {}


def _builtin(name, normalize, val_split, seed):
    labels = _BUILTIN_LABELS.get(name, [str(i) for i in range(10)])
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        pixels = digits.images * (255.0 / 16.0)
        split = _split(array_source(pixels), len(pixels), digits.target, normalize, val_split, seed)
        return (*split, labels, "grayscale")
    (x_train, y_train), (x_val, y_val) = _keras_dataset(name)
    color = "rgb" if name == "cifar10" else "grayscale"
    return (*_whole(x_train, y_train.ravel(), x_val, y_val.ravel(), normalize), labels, color)


def _keras_dataset(name):
    import importlib

    module = importlib.import_module(f"keras.datasets.{name}")
    try:
        return module.load_data()
    except Exception as exc:  # no network and no cache
        raise DataError(
            f"builtin:{name} is not cached in ~/.keras/datasets and could not be downloaded "
            f"({type(exc).__name__}); use builtin:digits offline"
        ) from None


def _npz(path: Path, normalize, val_split, seed, input_shape, outputs):
    try:
        arrays = open_npz(path)
    except Exception as exc:
        raise DataError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from None
    held_out = {"x_train", "x_test"} <= set(arrays)  # the file brings its own split (labels optional)
    x = arrays["x_test"] if held_out else arrays.get("x")
    if x is None:
        raise DataError(f"{path}: needs arrays x (and y), or x_train and x_test (and y_train, y_test); found "
                        f"{sorted(arrays)}")
    targets = _output_targets(arrays, path, outputs, input_shape) if held_out else {}
    if targets:
        arrays = {key: value for key, value in arrays.items() if not key.startswith(("y_train", "y_test"))}
    if held_out and ("y_train" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path}: labels for one split only ({'y_train' if 'y_train' in arrays else 'y_test'}); "
                        "give both y_train and y_test, or neither (unlabelled)")
    if x.size == 0 or x.ndim < 2:
        raise DataError(f"{path}: x holds no samples (shape {list(x.shape)})")
    images = _images(x, input_shape)
    transform = _as_stored if not images else (normalize if np.issubdtype(x.dtype, np.integer) else _float_images)
    if held_out:
        y_train, y_test = (_class_indices(arrays[key], f"{path}: {key}") if key in arrays else None
                           for key in ("y_train", "y_test"))
        x_train, y_train, x_val, y_val, split = _whole(arrays["x_train"], y_train, x, y_test, transform)
    else:
        y = _class_indices(arrays["y"], f"{path}: y") if "y" in arrays else None
        x_train, y_train, x_val, y_val, split = _split(array_source(x), len(x), y, transform, val_split, seed)
    labels = [str(v) for v in arrays["labels"]] if "labels" in arrays else _numbered_labels(y_train, y_val)
    _check_below(len(labels), path, y_train, y_val)
    color = None if not images else ("rgb" if x_val.shape[-1] == 3 else "grayscale")
    return x_train, y_train, x_val, y_val, split, labels, color, targets


def _output_targets(arrays: dict, path, outputs, input_shape=None) -> dict:
    """``{output name: (y_train, y_test)}`` of targets that are not one classifier's class ids: ``y_train_<name>``
    and ``y_test_<name>`` per output, or ``y_train``/``y_test`` for a model with one output they do not fit as
    class ids (given the model's ``outputs``, ``{name: sample shape}``). Empty: the labels are class ids."""
    named = sorted({key.split("_", 2)[2] for key in arrays if key.startswith(("y_train_", "y_test_"))})
    plain = "y_train" in arrays or "y_test" in arrays
    if named and plain:
        raise DataError(f"{path}: give y_train/y_test (one output) or y_train_<output>/y_test_<output>, not both")
    values = plain and outputs is not None and not _class_ids_of_one_classifier(arrays, outputs, input_shape)
    if not named and not values:
        return {}
    if not named and len(outputs) > 1:
        raise DataError(f"{path}: the model has {len(outputs)} outputs ({', '.join(outputs)}): name each one's "
                        "targets y_train_<output> and y_test_<output>")
    keys = ({name: (f"y_train_{name}", f"y_test_{name}") for name in named}
            or {next(iter(outputs)): ("y_train", "y_test")})
    for name, (train, test) in keys.items():
        if train not in arrays or test not in arrays:
            raise DataError(f"{path}: targets of {name} for one split only; give both {train} and {test}")
        if outputs is not None and name not in outputs:
            raise DataError(f"{path}: {train} names no output of the model (its outputs: {', '.join(outputs)})")
        if outputs is not None:
            _check_fits(arrays[train], outputs[name], f"{path}: {train}")
    return {name: (arrays[train], arrays[test]) for name, (train, test) in keys.items()}


def metric_choice(text: str) -> tuple:
    """``"mae:5"`` as ``("mae", 5.0)``: a metric and the budget of its output in the metric's units (here: at most
    5 % worse than the source); ``"mae"`` as ``("mae", None)``, the metric's default budget.

    >>> metric_choice("mae:5"), metric_choice("accuracy")
    (('mae', 5.0), ('accuracy', None))
    """
    name, colon, budget = text.partition(":")
    try:
        value = float(budget) if colon else None
    except ValueError:
        value = -1.0
    if value is not None and not value >= 0:
        raise DataError(f"{text!r}: the budget after ':' must be a number >= 0, in {name}'s units")
    return name, value


def _check_metric(name: str, metric: str, targets, shape) -> None:
    """A :class:`DataError` for a metric chosen for an output that has no targets, or that cannot score them."""
    if metric not in METRICS:
        raise DataError(f"unknown metric {metric!r} for {name}; choose one of: {', '.join(METRICS)}")
    if targets is None:
        raise DataError(f"--metric {name}={metric}: the data has no targets for {name} (y_train_{name}/y_test_{name}"
                        " in an .npz)")
    if (metric == "auc") != is_anomaly_labels(targets, shape):
        raise DataError(f"--metric {name}={metric}: auc scores, and only it, one 0/1 anomaly label per sample")
    class_ids = is_class_ids(targets, shape)
    if METRICS[metric].unit == "pt" and metric != "accuracy" and not class_ids and tuple(targets.shape[1:]) != shape:
        raise DataError(f"--metric {name}={metric} scores class ids, but the targets of {name} are values")
    if METRICS[metric].unit != "pt" and class_ids and tuple(targets.shape[1:]) != shape:
        raise DataError(f"--metric {name}={metric} scores values shaped like the output, but the targets of {name} "
                        "are class ids")


def _class_ids_of_one_classifier(arrays: dict, outputs: dict, input_shape=None) -> bool:
    """Plain labels of a model with one [classes] output, as ids or one-hot / probability rows (not the 0/1
    anomaly labels of an output that reconstructs the input)."""
    shapes = list(outputs.values())
    if len(shapes) != 1 or len(shapes[0]) != 1 or (shapes[0][0] or 0) < 2:
        return False
    y = np.asarray(arrays.get("y_train", arrays.get("y_test")))
    if reconstructs(shapes[0], input_shape) and is_anomaly_labels(y, shapes[0]):
        return False
    if y.ndim == 2 and y.shape[1] == shapes[0][0]:  # one-hot / probability rows, else values (keypoints, a box)
        return is_probability_rows(y)
    return y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)


def _check_fits(targets, shape: tuple, name: str) -> None:
    """A :class:`DataError` unless ``targets`` are shaped like the output (values) or one rank below it (class ids:
    whole numbers from 0 to classes - 1)."""
    sample, shape = tuple(targets.shape[1:]), tuple(shape)
    if np.prod(sample, dtype=int) == np.prod(shape, dtype=int) and not is_class_ids(targets, shape):
        return  # values, as many per sample as the output has (a [1] output's targets may come flat)
    if is_anomaly_labels(targets, shape):
        return
    if sample != shape[:-1]:
        raise DataError(f"{name}: samples of shape {list(sample)} fit no output of shape {list(shape)} (values "
                        f"shaped {list(shape)}, class ids shaped {list(shape[:-1])}, or one 0/1 anomaly label)")
    ids = np.asarray(targets)
    if not is_class_ids(ids, shape) or ids.min() < 0 or ids.max() >= shape[-1]:
        raise DataError(f"{name}: class ids must be whole numbers from 0 to {shape[-1] - 1} (the output's classes)")


def _images(x: np.ndarray, input_shape) -> bool:
    """Whether samples of ``x`` are images [H, W] or [H, W, C<=4]: not when the model's ``input_shape``
    takes them as they are with another rank (sequences [T, F], tabular [F])."""
    sample = x.shape[1:]
    if input_shape is not None and len(input_shape) != 3 and len(input_shape) == len(sample):
        return False
    return len(sample) == 2 or (len(sample) == 3 and sample[-1] <= 4)


def _folder(path: Path, image_size, color, normalize, val_split, seed):
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and _images_in(p))
    files = [f for c in classes for f in _images_in(path / c)] if classes else _images_in(path)
    if not files:
        raise DataError(f"{path}: no images found (expected {', '.join(IMAGE_SUFFIXES)} files or class sub-folders)")
    targets = np.array([classes.index(f.parent.name) for f in files]) if classes else None
    source, color = _image_source(files, image_size, color)
    return (*_split(source, len(files), targets, normalize, val_split, seed), classes, color)


def _images_in(folder: Path) -> list:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _image_source(files, image_size, color):
    """A source decoding (and resizing) the image files it is asked for, and the colour mode."""
    from PIL import Image

    with Image.open(files[0]) as first:
        color = color or ("grayscale" if first.mode in ("L", "1", "I", "I;16") else "rgb")
        height, width = image_size or (first.height, first.width)
    mode = "L" if color == "grayscale" else "RGB"

    def decode(rows):
        images = []
        for file in (files[row] for row in rows):
            try:
                with Image.open(file) as image:
                    images.append(np.asarray(image.convert(mode).resize((width, height)), dtype=np.uint8))
            except OSError as exc:
                raise DataError(f"{file}: not a readable image ({exc})") from None
        return np.stack(images) if images else np.zeros((0, height, width), np.uint8)

    return decode, color


# -- array helpers ----------------------------------------------------------------


def _class_indices(y: np.ndarray, name: str = "labels") -> np.ndarray:
    """Class ids from ``y`` (ids, or one-hot / probability rows); a :class:`DataError` naming ``name`` and the first
    bad row for labels that are no class ids (negative, fractional, not numbers).

    >>> _class_indices(np.array([[0, 1], [1, 0]])), _class_indices(np.array([2.0, 0.0]))
    (array([1, 0]), array([2, 0]))
    >>> _class_indices(np.array([1, -1, 2]), "data.npz: y_test")
    Traceback (most recent call last):
    ...
    edgesmith.data.DataError: data.npz: y_test: label -1 at row 1 is negative; class ids run from 0 to classes - 1
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=-1).astype(np.int64)
    flat = y.ravel()
    if not (np.issubdtype(flat.dtype, np.number) or flat.dtype == bool):
        raise DataError(f"{name}: labels of type {flat.dtype} are not class ids (integers from 0)")
    fractional = np.flatnonzero(~np.isfinite(flat) | (flat != np.round(flat))) if flat.dtype.kind == "f" else []
    if len(fractional):
        row = int(fractional[0])
        raise DataError(f"{name}: label {flat[row]:g} at row {row} is not a class id; a classifier's labels are "
                        "integers from 0 (or one-hot rows)")
    negative = np.flatnonzero(flat < 0)
    if len(negative):
        row = int(negative[0])
        raise DataError(f"{name}: label {flat[row]:g} at row {row} is negative; class ids run from 0 to classes - 1")
    return flat.astype(np.int64)


def _check_below(classes: int, path, y_train, y_val) -> None:
    """A :class:`DataError` for the first label at or above ``classes`` (the names the file gives)."""
    for key, y in (("y_train", y_train), ("y_test", y_val)):
        over = np.flatnonzero(y >= classes) if y is not None else []
        if len(over):
            row = int(over[0])
            raise DataError(f"{path}: {key}: label {int(y[row])} at row {row} is at or above the {classes} classes "
                            "its labels array names")


def _numbered_labels(*targets) -> list:
    known = [t for t in targets if t is not None]
    return [str(i) for i in range(int(max(t.max() for t in known)) + 1)] if known else []


def _with_channels(x: np.ndarray) -> np.ndarray:
    return x[..., None] if x.ndim == 3 else x


def _float_images(raw: np.ndarray) -> np.ndarray:
    return _with_channels(raw.astype(np.float32))


def _as_stored(raw: np.ndarray) -> np.ndarray:
    return raw.astype(np.float32) if np.issubdtype(raw.dtype, np.floating) else raw


def _whole(x_train, y_train, x_val, y_val, transform) -> tuple:
    """``(x_train, y_train, x_val, y_val, split)``: both arrays as whole splits, with their labels, and the split
    as the metadata records it."""
    return (Samples(array_source(x_train), np.arange(len(x_train)), transform), y_train,
            Samples(array_source(x_val), np.arange(len(x_val)), transform), y_val,
            {"held_out": "the source's test split"})


def _split(source, count: int, y, transform, val_split, seed):
    """``(x_train, y_train, x_val, y_val, split)``: a random training / evaluation split of the ``count`` samples
    of ``source`` (and their labels ``y``), and the split as the metadata records it."""
    order = np.random.default_rng(seed).permutation(count)
    held_out = max(1, int(round(count * val_split))) if count else 0
    val, train = np.sort(order[:held_out]), np.sort(order[held_out:])
    return (Samples(source, train, transform), None if y is None else y[train],
            Samples(source, val, transform), None if y is None else y[val], {"val_split": val_split, "seed": seed})


def _pick(count: int, limit: int, seed: int) -> np.ndarray:
    """Sorted positions of ``limit`` of ``count`` samples drawn at random with ``seed`` (all when there are fewer)."""
    return np.sort(np.random.default_rng(seed).permutation(count)[:limit])
