"""Post-training conversion of a Keras model to .tflite, quantized or not.

>>> from edgesmith.converters import ptq
>>> tflite = ptq(model, data, mode="int8")          # full int8, calibrated on data
>>> tflite.content[4:8], len(tflite.content) < len(ptq(model, data).content) / 3  # about 4x smaller than float32
(b'TFL3', True)

Modes: ``float32`` (no quantization), ``fp16`` (float16 weights),
``dynamic`` (int8 weights, float activations), ``int8`` (int8 weights and
activations, calibrated; ``io`` chooses int8, uint8 or float inputs/outputs),
``int16x8`` (int16 activations, int8 weights). A model trained by :func:`qat`
converts to int8 from its own learned ranges.

Keras and TensorFlow are imported when a model is converted, not with this module: checking a
recipe that ends in ``ptq`` (its options are read from :func:`ptq`'s signature) loads neither.
"""

from __future__ import annotations

import contextlib
import io
import warnings

from edgesmith.runtime.tflite_file import gzipped_size

from .checks import check_choice, checked
from .errors import ConversionError, NoCalibrationDataError, UnknownOptionError, UnsupportedModelError
from .record import StageRecord, remember
from .sources import SavedModelSource

MODES = ("float32", "fp16", "dynamic", "int8", "int16x8")
IO_TYPES = ("float", "int8", "uint8", "int16")
CALIBRATED = ("int8", "int16x8")


class TFLiteModel:
    """A converted .tflite in memory, with the Keras model it came from (for verification)."""

    def __init__(self, content: bytes, keras_model, mode: str, io_type: str):
        self.content = content
        self.keras_model = keras_model
        self.mode = mode
        self.io_type = io_type

    @property
    def gzip_bytes(self) -> int:
        """Size after gzip: what a weight-shared or pruned model really costs to ship."""
        return gzipped_size(self.content)


def _check_options(mode, io):
    check_choice("mode", mode, MODES)
    check_choice("io", io, IO_TYPES)
    if io != "float" and (mode, io) not in (("int8", "int8"), ("int8", "uint8"), ("int16x8", "int16")):
        raise UnknownOptionError(f"io={io} does not fit mode={mode}; int8 takes int8/uint8/float, int16x8 int16/float")


def _check_model(model, mode):
    """Recurrent layers cannot be calibrated (checked before a recipe's first pass trains)."""
    _refuse_calibrated_recurrent(model, mode, is_quantization_aware(model))


@checked(options=_check_options, model=_check_model)
def ptq(model, data=None, mode: str = "float32", io: str = "float", calibration_samples: int = 256):
    """Convert ``model`` to .tflite with post-training quantization ``mode``.

    Args:
        model: a ``keras.Model`` or a :class:`~edgesmith.converters.load.SavedModelSource`.
        data: a :class:`edgesmith.data.Dataset`; needed (for calibration) by int8 and int16x8.
        mode: one of float32, fp16, dynamic, int8, int16x8.
        io: input/output type: float, or int8/uint8 for int8 (int16 for int16x8).
        calibration_samples: training samples used to measure activation ranges.
    """
    from .stage import stage_record

    _check_options(mode, io)
    learned = is_quantization_aware(model)
    if mode in CALIBRATED and data is None and not learned:
        raise NoCalibrationDataError(
            f"{mode} quantization needs calibration data: pass --data (an image folder, .npz or builtin:NAME; "
            "unlabeled images are enough)")
    _refuse_calibrated_recurrent(model, mode, learned)
    calibrate = data is not None and mode in CALIBRATED and not learned  # QAT models bring their own ranges
    samples = data.calibration(calibration_samples) if calibrate else None
    content = _conversion(model, mode, io, samples)
    tflite = TFLiteModel(content, None if isinstance(model, SavedModelSource) else model, mode, io)
    record = (stage_record(f"ptq:{mode}", model) if tflite.keras_model is not None
              else StageRecord(name=f"ptq:{mode}", params=0, nonzero_params=0))
    record.details.update({"mode": mode, "io": io, "tflite_bytes": len(content), "gzip_bytes": tflite.gzip_bytes,
                           "learned_ranges": learned})
    return remember(tflite, record)


def float_tflite(model) -> bytes:
    """The plain float32 .tflite of ``model``: the size baseline every report compares against."""
    return _conversion(model, "float32")


def is_quantization_aware(model) -> bool:
    """True for models made by :func:`qat` (they carry their own int8 ranges)."""
    from .qat_layers import has_fake_quant

    return not isinstance(model, SavedModelSource) and has_fake_quant(model)


def _refuse_calibrated_recurrent(model, mode, learned) -> None:
    if mode not in CALIBRATED or learned or isinstance(model, SavedModelSource):
        return
    from .kernels import recurrent_layers

    recurrent = recurrent_layers(model)
    if recurrent:
        raise UnsupportedModelError(
            f"{mode} post-training quantization cannot calibrate recurrent layer {recurrent[0]}: TFLite's calibrator "
            "crashes on the WHILE loop a Keras 3 RNN becomes; use fp16 or dynamic-int8 (int8 weights)")


def _converter(model):
    import tensorflow as tf

    from .kernels import recurrent_layers

    if isinstance(model, SavedModelSource):
        return tf.lite.TFLiteConverter.from_saved_model(str(model.path))
    if recurrent_layers(model):
        return tf.lite.TFLiteConverter.from_keras_model(_at_batch_one(model))
    return tf.lite.TFLiteConverter.from_keras_model(model)


def _at_batch_one(model):
    """``model`` with a batch of 1 fixed in its inputs: Keras 3 RNNs lower to TensorList ops that TFLite converts
    only with static shapes (one sample at a time is what a device runs; the runtime feeds batches in slices)."""
    import keras

    inputs = [keras.Input(batch_shape=(1, *t.shape[1:]), dtype=t.dtype, name=t.name) for t in model.inputs]
    fixed = keras.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0])
    fixed.set_weights(model.get_weights())
    return fixed


def to_tflite(model, mode: str = "float32", io_type: str = "float", samples=None) -> bytes:
    """``model`` (a ``keras.Model`` or a :class:`SavedModelSource`) converted to .tflite in ``mode``, calibrated on
    ``samples`` when given (a :func:`qat` model, given none, converts from its own ranges): the one conversion
    :func:`ptq`, :func:`float_tflite` and qat's dry run share. A refusal is TFLite's own exception."""
    import tensorflow as tf

    converter = _converter(model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in CALIBRATED and samples is not None:
        converter.representative_dataset = lambda: ([samples[i : i + 1]] for i in range(len(samples)))
    if mode == "int8" and samples is not None:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if mode == "int16x8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if io_type != "float":
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io_type)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Keras exporter prints its log; TF warns about statistics
        return converter.convert()


def _conversion(model, mode: str, io_type: str = "float", samples=None) -> bytes:
    """:func:`to_tflite`, a refusal as a one-line :class:`ConversionError`."""
    try:
        return to_tflite(model, mode, io_type, samples)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConversionError(f"TFLiteConverter failed for mode {mode}: {first_line}") from None
