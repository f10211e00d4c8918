"""A slice of the conformance matrix (benchmarks/conformance.py) at tiny sizes: every cell is a verified
.tflite with sane numbers, or a refusal that is one line from an edgesmith error; never a crash."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs benchmarks/conformance.py on real architectures

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"
# a Keras 3 sequence model; a Keras 2 .h5 written by tf_keras where it is installed (it is not in the [test] extra:
# it pulls in a second TensorFlow wheel)
MODELS = ("kws-conv1d",) + (("legacy-h5",) if importlib.util.find_spec("tf_keras") else ())
RECIPES = ("int8-ptq", "int8-qat")


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, load_benchmark):
    if not MNIST.is_file():
        pytest.skip(f"{MNIST} is not present")
    out = tmp_path_factory.mktemp("conformance")
    benchmark = load_benchmark("conformance")
    result = benchmark.main([
        "--models", ",".join(MODELS), "--recipes", ",".join(RECIPES), "--source-train-samples", "1500",
        "--train-samples", "300", "--test-samples", "200", "--source-epochs", "4", "--max-recipe-epochs", "1", "--out", str(out),
        "--json", str(out / "matrix.json"), "--in-process",
    ])
    return benchmark, result, out


def test_every_cell_is_verified_or_a_named_refusal(matrix):
    _, result, _ = matrix
    assert list(result["matrix"]) == list(MODELS)
    for name, row in result["matrix"].items():
        assert set(row["cells"]) == set(RECIPES)
        for recipe, cell in row["cells"].items():
            assert cell["status"] in ("verified", "budget missed", "refused"), (name, recipe, cell["error"])
            if cell["status"] == "refused":
                kind, _, message = cell["error"].partition(": ")
                assert kind.endswith("Error") and message and "\n" not in message, cell["error"]


def test_verified_cells_carry_real_numbers(matrix):
    _, result, out = matrix
    verified = 0
    for name, row in result["matrix"].items():
        assert row["source"]["accuracy"] > 0.3, (name, row["source"])  # 10 classes: well above chance
        for recipe, cell in row["cells"].items():
            if cell["status"] in ("refused", "crash"):
                continue
            verified += 1
            tflite = out / name / recipe / "model.tflite"
            assert tflite.is_file() and tflite.stat().st_size == cell["tflite_bytes"]
            assert cell["tflite_bytes"] < cell["float_tflite_bytes"]  # int8 weights: smaller than float32
            assert 0.5 <= cell["top1_agreement"] <= 1.0, (name, recipe, cell)
            assert cell["source_accuracy"] == pytest.approx(row["source"]["accuracy"], abs=0.02)
            expected_drop = 100 * (cell["source_accuracy"] - cell["tflite_accuracy"])
            assert cell["accuracy_drop_pt"] == pytest.approx(expected_drop, abs=0.01)
            assert cell["seconds"] > 0
    assert verified >= len(MODELS)  # int8-ptq at least must convert these plain graphs


def test_table_and_json_show_every_cell(matrix):
    benchmark, result, out = matrix
    table = benchmark.markdown_table(result["matrix"], list(RECIPES))
    assert len(table.splitlines()) == 2 + len(MODELS)
    for name in MODELS:
        assert f"| {name} |" in table
    written = json.loads((out / "matrix.json").read_text())
    assert written["counts"] == result["counts"] and "recipe epochs capped at 1" in written["budget"]
