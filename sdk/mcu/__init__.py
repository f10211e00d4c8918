"""Microcontrollers: TensorFlow Lite Micro as a target (``edgesmith mcu``).

>>> from edgesmith.mcu import check_mcu
>>> check_mcu("model.tflite", ["stm32u385"])["profiles"][0]["fits"]
True

Measured here: that TFLite Micro runs the model, its arena (TFLM's allocation record and the smallest
arena that runs), its flash bytes, accuracy in TFLM and agreement with LiteRT's reference kernels.
Estimated: latency on the device (MACs x the core's cycles per MAC from MLPerf Tiny results).
Written: TFLM's lookup-table weight compression (:func:`compress_tflm`), the firmware sources
(:func:`export_firmware`), both for one board (:func:`firmware_bundle`).
"""

from edgesmith.mcu.bundle import firmware_bundle
from edgesmith.mcu.check import check_mcu
from edgesmith.mcu.compress import compress_tflm
from edgesmith.mcu.export import export_firmware
from edgesmith.mcu.fit import fit, measure_memory
from edgesmith.mcu.profiles import list_mcu_profiles, load_mcu_profile

__all__ = ["check_mcu", "compress_tflm", "export_firmware", "firmware_bundle", "fit", "list_mcu_profiles",
           "load_mcu_profile", "measure_memory"]
