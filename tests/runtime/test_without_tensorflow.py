"""The runtime and `edgesmith bench` work where TensorFlow and Keras cannot be imported,
as on a Raspberry Pi: a subprocess whose import hook refuses them runs the real thing."""

import json
import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent(
    """
    import sys

    class RefuseTensorFlow:
        blocked = ("tensorflow", "keras", "tf_keras", "tensorflow_cpu")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, RefuseTensorFlow())
    """
)


def run_blocked(body: str, *args) -> subprocess.CompletedProcess:
    script = BLOCKER + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_runtime_imports_and_runs_without_tensorflow(tflite_models, tmp_path):
    done = run_blocked(
        """
        import json, sys
        import numpy as np
        try:
            import tensorflow
            raise SystemExit("the blocker failed")
        except ImportError:
            pass
        from edgesmith.runtime import Classifier, Model, write_metadata, read_metadata
        model = Model(sys.argv[1])
        out = model.predict(np.zeros((2, 16, 16, 3), np.float32))
        labelled = write_metadata(sys.argv[1], {"labels": ["a", "b", "c", "d"]}, sys.argv[2])
        top = Classifier(labelled).classify(np.zeros((16, 16, 3), np.uint8), top_k=1)
        print(json.dumps({"shape": list(out.shape), "backend": model.backend, "top": top[0][0],
                          "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))}))
        """,
        tflite_models["int8"],
        tmp_path / "labelled.tflite",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"shape": [2, 4], "backend": "ai_edge_litert", "top": result["top"], "loaded": []}
    assert result["top"] in ("a", "b", "c", "d")


def test_bench_cli_runs_without_tensorflow(tflite_models, tmp_path):
    log = tmp_path / "bench.jsonl"
    done = run_blocked(
        """
        import sys
        from edgesmith.cli import main
        main(["bench", sys.argv[1], "--runs", "20", "--warmup", "2", "--log", sys.argv[2], "--json"])
        """,
        tflite_models["float"],
        log,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)["summary"]
    assert summary["runs"] == 20 and summary["latency_ms"]["p50"] > 0
    assert len(log.read_text().splitlines()) == 1 + 2 + 20 + 1
