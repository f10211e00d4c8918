"""Help and bad input never wait for TensorFlow: they load none of it (nor Keras)."""

import subprocess
import sys

import pytest

# runs the CLI in a fresh interpreter; prints the seconds it took and whether TensorFlow or Keras got loaded
PROBE = """
import sys, time
started = time.perf_counter()
from edgesmith.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({name.split('.')[0] for name in sys.modules} & {'tensorflow', 'keras'})
print(f"seconds={time.perf_counter() - started:.2f} heavy={','.join(heavy) or 'none'}", file=sys.stderr)
"""


def probe(*args) -> tuple:
    done = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)
    *said, last = done.stdout.strip().splitlines()
    seconds, heavy = (part.split("=")[1] for part in last.split())
    return "\n".join(said), float(seconds), heavy


@pytest.mark.parametrize("module", ["edgesmith.converters.errors", "edgesmith.converters.registry", "edgesmith.recipes",
                                    "edgesmith.converters.ptq"])
def test_light_modules_import_no_tensorflow(module):
    code = f"import sys, {module}; print(sorted({{n.split('.')[0] for n in sys.modules}} & {{'tensorflow', 'keras'}}))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_help_is_quick():
    said, seconds, heavy = probe("--help")
    assert "convert-and-deploy" in said
    assert heavy == "none" and seconds < 1.0, (seconds, heavy)


@pytest.mark.parametrize("args, message", [
    (["nosuch"], "No such command 'nosuch'"),
    (["convert", "--bogus"], "No such option '--bogus'"),
    (["convert", "{model}", "--recipe", "int9", "--data", "builtin:digits", "--out", "{tmp}/o"], "unknown recipe 'int9'"),
    (["convert", "{tmp}/absent.keras", "--data", "builtin:digits", "--out", "{tmp}/o"], "no such model file"),
    (["convert", "{tmp}/absent.keras", "--recipe", "int8-qat", "--data", "builtin:digits", "--out", "{tmp}/o"],
     "no such model file"),
    (["convert", "{model}", "--data", "builtin:nope", "--out", "{tmp}/o"], "unknown built-in data 'nope'"),
    (["optimize", "{tmp}/absent.keras", "--data", "builtin:digits", "--out", "{tmp}/o"], "no such model file"),
    (["sensitivity", "{model}", "--data", "builtin:nope"], "unknown built-in data 'nope'"),
    (["debug", "{model}", "{tmp}/absent.tflite", "--data", "builtin:digits"], "absent.tflite: no such file"),
    (["convert-and-deploy", "{tmp}/absent.keras", "--data", "builtin:digits", "--target", "local", "--out", "{tmp}/o"],
     "no such model file"),
    (["convert", "{model}", "--data", "{tmp}/absent.npz", "--out", "{tmp}/o"], "absent.npz: no such file"),
    (["convert", "{model}", "--data", "{tmp}/absent", "--out", "{tmp}/o"], "cannot read data"),
])
def test_bad_input_fails_before_tensorflow_loads(tmp_path, args, message):
    model = tmp_path / "m.keras"
    model.write_bytes(b"")  # its contents are read only after the cheap checks pass
    said, _, heavy = probe(*(a.format(model=model, tmp=tmp_path) for a in args))
    assert message in said and heavy == "none", (said, heavy)
