"""The runtime requirements a target is sent are pyproject's base dependencies, for that target."""

from edgesmith.deploy.wheels import runtime_requirements


def names(requirements):
    return {requirement.split(">")[0].split("<")[0].split("=")[0] for requirement in requirements}


def test_a_32_bit_pi_gets_tflite_runtime_and_numpy_below_2():
    needed = runtime_requirements("armv7l", (3, 9))
    assert "numpy<2,>=1.23" in needed and "tflite-runtime>=2.14" in needed
    assert names(needed) == {"numpy", "pillow", "click", "flatbuffers", "tomli", "tflite-runtime"}


def test_a_64_bit_board_gets_litert_and_never_tensorflow():
    needed = runtime_requirements("aarch64", (3, 12))
    assert names(needed) == {"numpy", "pillow", "click", "flatbuffers", "ai-edge-litert"}
    assert runtime_requirements("armv6l", (3, 11)) == [r for r in runtime_requirements("armv7l", (3, 11))]
