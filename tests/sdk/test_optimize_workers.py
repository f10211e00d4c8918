"""Scale-out: two worker processes share one study through a journal file; training under MirroredStrategy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.sdk.test_optimize_models import REPO, digits, saved, tiny_model

pytestmark = pytest.mark.slow  # runs optimize workers that train and convert


def test_two_workers_share_one_study_and_both_contribute(tmp_path):
    model = saved(tiny_model(digits()), tmp_path)
    journal = tmp_path / "shared.journal"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def worker(name):
        argv = [sys.executable, "-m", "edgesmith", "optimize", str(model), "--data", "builtin:digits",
                "--out", str(tmp_path / name), "--storage", f"journal:{journal}", "--study", "shared",
                "--passes", "prune", "--trials", "4", "--runs", "5", "--warmup", "1", "--json"]
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    workers = [worker("a"), worker("b")]
    outputs = [w.communicate(timeout=300) for w in workers]
    for process, (_, err) in zip(workers, outputs):
        assert process.returncode == 0, err[-2000:]

    import optuna

    from edgesmith.optimize.search import optuna_storage

    study = optuna.load_study(study_name="shared", storage=optuna_storage(f"journal:{journal}"))
    finished = [t for t in study.trials if t.state.is_finished()]
    contributors = {t.user_attrs["worker"] for t in finished}
    assert len(contributors) == 2  # both processes ran trials of the one study
    assert 4 <= len(finished) <= 6  # the shared total, overshot at most by the trial each was running
    last = json.loads(outputs[1][0])
    assert len(last["workers"]) == 2 and last["met"]


MIRRORED = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from pathlib import Path
    from edgesmith.converters.load import load_model
    from edgesmith.data import load_data
    from edgesmith.pipeline import Source, run_recipe
    from edgesmith.recipes import recipe_from_dict
    data = load_data("builtin:digits")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    steps = [{"pass": "channel_prune", "ratio": 0.0, "ratios": {"conv2": 0.5}, "scope": "layer", "epochs": 1},
             {"pass": "prune", "sparsity": 0.5, "epochs": 1}, {"pass": "mixed_precision"}]
    converted = run_recipe(Source(load_model(sys.argv[1]), ""), recipe_from_dict({"passes": steps}), data,
                           Path(sys.argv[2]), keep_stages=False, strategy=strategy)
    trained = converted.tflite.keras_model
    kernel = trained.get_layer("fc1").kernel
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "variable": type(kernel).__name__ if not hasattr(kernel, "value") else type(kernel.value).__name__,
        "conv2_filters": trained.get_layer("conv2").filters,
        "fc1_zeros": float(np.mean(np.asarray(kernel) == 0)),
        "tflite_accuracy": converted.report.verification.tflite_accuracy,
    }))
""")


def test_training_passes_run_under_a_mirrored_strategy_on_two_logical_cpus(tmp_path):
    model = saved(tiny_model(digits()), tmp_path)
    # logical devices must be configured before TensorFlow initializes: a fresh process
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(model), str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=240, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["replicas"] == 2 and found["variable"] == "MirroredVariable"
    assert found["conv2_filters"] == 8  # half of 16 channels removed
    assert found["fc1_zeros"] >= 0.5  # the pruning mask survived distributed fine-tuning
    assert found["tflite_accuracy"] > 0.8
