package dev.edgesmith.core;

import java.io.File;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;

/**
 * What a benchmark started from adb asks for, read from the intent's extras and checked.
 *
 * <pre>
 * adb shell am start -n dev.edgesmith.demo/.BenchmarkActivity \
 *     --es model digits.tflite --ei runs 200 --ei warmup 20 --ei threads 4 \
 *     --es delegate xnnpack --es input random --es log digits.jsonl
 * </pre>
 *
 * <p>Only {@code model} is required; the others default as in {@link #fromExtras}.
 */
public final class BenchmarkRequest {
    /** Delegates the app offers, in the log's spelling ({@code header.runtime.delegate}). */
    public static final List<String> DELEGATES = Arrays.asList("xnnpack", "gpu", "nnapi", "none");
    /** Inputs: random pixels, or the images in {@code files/images/}. */
    public static final List<String> INPUTS = Arrays.asList("random", "images");
    public static final String MODELS_DIR = "models";
    public static final String LOGS_DIR = "logs";
    public static final String IMAGES_DIR = "images";

    public final File model;
    public final int runs;
    public final int warmup;
    public final int threads;
    public final String delegate;
    public final String input;
    public final File log;
    public final boolean energy;

    /** The intent's extras, as Android's {@code Intent.getStringExtra} / {@code hasExtra + getIntExtra} give them. */
    public interface Extras {
        /** The string extra {@code key}, or null when absent. */
        String string(String key);

        /** The int extra {@code key}, or null when absent. */
        Integer integer(String key);
    }

    private BenchmarkRequest(File model, int runs, int warmup, int threads, String delegate, String input, File log,
            boolean energy) {
        this.model = model;
        this.runs = runs;
        this.warmup = warmup;
        this.threads = threads;
        this.delegate = delegate;
        this.input = input;
        this.log = log;
        this.energy = energy;
    }

    /**
     * Read and check a request.
     *
     * @param filesDir the app's {@code getExternalFilesDir(null)}: models are looked up in its
     *     {@code models/} folder (unless {@code model} is an absolute path) and logs go to {@code logs/}
     * @param cores the phone's core count, the default for {@code threads}
     */
    public static BenchmarkRequest fromExtras(Extras extras, File filesDir, int cores) throws EdgesmithException {
        String model = extras.string("model");
        if (model == null || model.isEmpty()) {
            throw new EdgesmithException("no model given: add --es model NAME.tflite (a file pushed to "
                    + new File(filesDir, MODELS_DIR) + ")");
        }
        File modelFile = model.startsWith("/") ? new File(model) : new File(new File(filesDir, MODELS_DIR), model);
        String logName = orDefault(extras.string("log"), "benchmark.jsonl");
        if (logName.contains("/")) {
            throw new EdgesmithException("--es log takes a file name, not a path (logs go to " + new File(filesDir, LOGS_DIR) + ")");
        }
        return new BenchmarkRequest(modelFile,
                atLeast(extras, "runs", 100, 1), atLeast(extras, "warmup", 10, 0), atLeast(extras, "threads", cores, 1),
                oneOf(extras, "delegate", "xnnpack", DELEGATES), oneOf(extras, "input", "random", INPUTS),
                new File(new File(filesDir, LOGS_DIR), logName), !"none".equals(extras.string("energy")));
    }

    /** The status file beside the log: {@code <log>.status}, replaced whole at each state change. */
    public File statusFile() {
        return new File(log.getPath() + ".status");
    }

    /**
     * Replace the status file: {@code {"state": "running"|"done"|"failed", "log": PATH, "error": MESSAGE|null,
     * "skipped": [IMAGES THAT COULD NOT BE DECODED]}}. {@code edgesmith deploy} polls it to learn
     * that a run failed without waiting for a summary that will never come.
     */
    public void writeStatus(String state, String error, List<String> skipped) throws IOException {
        File folder = log.getAbsoluteFile().getParentFile();
        if (!folder.isDirectory() && !folder.mkdirs()) {
            throw new IOException(folder + ": cannot create the log folder");
        }
        LogWriter.writeAtomically(statusFile(), Json.write(Json.object("state", state, "log", log.getPath(),
                "error", error, "skipped", skipped)) + "\n");
    }

    private static int atLeast(Extras extras, String key, int fallback, int minimum) throws EdgesmithException {
        Integer value = extras.integer(key);
        if (value == null) {
            return fallback;
        }
        if (value < minimum) {
            throw new EdgesmithException("--ei " + key + " must be at least " + minimum + ", got " + value);
        }
        return value;
    }

    private static String oneOf(Extras extras, String key, String fallback, List<String> allowed)
            throws EdgesmithException {
        String value = orDefault(extras.string(key), fallback);
        if (!allowed.contains(value)) {
            throw new EdgesmithException("--es " + key + " must be one of " + allowed + ", got '" + value + "'");
        }
        return value;
    }

    private static String orDefault(String value, String fallback) {
        return value == null || value.isEmpty() ? fallback : value;
    }
}
