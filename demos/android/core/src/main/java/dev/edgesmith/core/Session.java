package dev.edgesmith.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.text.SimpleDateFormat;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TimeZone;

/**
 * One logged session: a {@code header}, a {@code run} record per timed inference, a {@code summary}.
 *
 * <p>The records follow docs/log-schema.md exactly; {@code edgesmith report} reads them next to
 * the Python bench's and the Raspberry Pi demo's. Both the camera screen and the benchmark
 * mode log through this class.
 *
 * <pre>{@code
 * Session session = new Session(new LogWriter(file));
 * session.header(Session.modelInfo(model, meta), device, "xnnpack", 4, Session.config(100, 10, "random", "auto"), "0.1.0");
 * session.record("steady", t, preMs, invokeMs, postMs, top.get(0), "camera:17");
 * session.finish(initMs, energy, cpu, LinuxProc.peakRssMb(new File("/proc/self/status")), null);
 * }</pre>
 */
public final class Session {
    public static final String TOOL = "edgesmith-android";
    public static final String BACKEND = "litert-android";
    public static final String WARMUP = "warmup";
    public static final String STEADY = "steady";

    private final LogWriter log;
    private final List<double[]> warmupRuns = new ArrayList<double[]>(); // {pre, invoke, post} ms
    private final List<double[]> steadyRuns = new ArrayList<double[]>();
    private Object macs;

    public Session(LogWriter log) {
        this.log = log;
    }

    // -- building blocks of the header ----------------------------------------------------------

    /** {@code header.model}: path, SHA-256, size, MACs (from metadata, when known) and the metadata. */
    public static Map<String, Object> modelInfo(File model, ModelMetadata metadata) throws IOException {
        Map<String, Object> json = metadata.json();
        return Json.object("path", model.getPath(), "sha256", sha256(model), "size_bytes", model.length(),
                "macs", json == null ? null : json.get("macs"), "metadata", json);
    }

    /** {@code header.device}; {@code profile} stays null (phones have no edgesmith device profile yet). */
    public static Map<String, Object> deviceInfo(String hostname, String system, String machine, String cpu, int cores) {
        return Json.object("hostname", hostname, "system", system, "machine", machine, "cpu", cpu,
                "cores", cores, "profile", null);
    }

    /** {@code header.config}: runs, warm-up runs, the input ("random", a file, "camera") and the energy meter asked for. */
    public static Map<String, Object> config(int runs, int warmup, String input, String energy) {
        return Json.object("runs", runs, "warmup", warmup, "input", input, "energy", energy);
    }

    /** {@code summary.cpu}; any field may be null where the phone does not expose it. */
    public static Map<String, Object> cpu(Double tempStart, Double tempEnd, Integer freqStart, Integer freqEnd,
            Boolean throttled) {
        return Json.object("temp_c_start", tempStart, "temp_c_end", tempEnd, "freq_mhz_start", freqStart,
                "freq_mhz_end", freqEnd, "throttled", throttled);
    }

    // -- the records ------------------------------------------------------------------------------

    /** Write the header; {@code delegate} is xnnpack, gpu, nnapi or none. */
    public void header(Map<String, Object> model, Map<String, Object> device, String delegate, int threads,
            Map<String, Object> config, String toolVersion) throws IOException {
        macs = model.get("macs");
        log.write(Json.object("type", "header", "time", utcNow(), "tool", TOOL, "tool_version", toolVersion,
                "model", model, "device", device,
                "runtime", Json.object("backend", BACKEND, "threads", threads, "delegate", delegate),
                "config", config));
    }

    /**
     * Write one run record and keep its timings for the summary.
     *
     * @param phase {@link #WARMUP} or {@link #STEADY}
     * @param wallSeconds when the run started, Unix seconds
     * @param top the top-1 prediction, or null
     * @param source the image file or camera frame id, or null
     */
    public void record(String phase, double wallSeconds, double preMs, double invokeMs, double postMs,
            Prediction top, String source) throws IOException {
        List<double[]> runs = WARMUP.equals(phase) ? warmupRuns : steadyRuns;
        Map<String, Object> record = Json.object("type", "run", "i", runs.size(), "phase", phase, "t", wallSeconds,
                "pre_ms", preMs, "invoke_ms", invokeMs, "post_ms", postMs);
        if (top != null) {
            record.put("label", top.label);
            record.put("score", (double) top.score);
        }
        if (source != null) {
            record.put("source", source);
        }
        runs.add(new double[] {preMs, invokeMs, postMs});
        log.write(record);
    }

    /** How many steady-state runs were recorded so far. */
    public int steadyRuns() {
        return steadyRuns.size();
    }

    /**
     * Write and return the summary of the steady-state runs.
     *
     * @param energy {@code summary.energy}, from {@link BatterySampler#stop} or {@link BatteryEnergy#unavailable}
     * @param framesPerSecond measured frame rate for the camera screen; null to use 1000 / mean invoke ms
     */
    public Map<String, Object> finish(double initMs, Map<String, Object> energy, Map<String, Object> cpu,
            Double peakRssMb, Double framesPerSecond) throws IOException {
        if (steadyRuns.isEmpty()) {
            throw new IllegalStateException("no steady-state runs to summarize");
        }
        LatencyStats latency = LatencyStats.of(column(steadyRuns, 1));
        double[] warmInvoke = column(warmupRuns, 1);
        double firstInvoke = warmInvoke.length > 0 ? warmInvoke[0] : column(steadyRuns, 1)[0];
        Double macsCount = macs instanceof Number ? ((Number) macs).doubleValue() : null;
        Map<String, Object> summary = Json.object("type", "summary", "runs", steadyRuns.size(), "init_ms", initMs,
                "first_invoke_ms", firstInvoke, "warmup_ms", warmupSummary(warmInvoke),
                "latency_ms", latency.toMap(),
                "pre_ms", LatencyStats.of(column(steadyRuns, 0)).toMap(),
                "post_ms", LatencyStats.of(column(steadyRuns, 2)).toMap(),
                "throughput_ips", framesPerSecond != null ? framesPerSecond : 1000.0 / latency.mean,
                "peak_rss_mb", peakRssMb, "cpu", cpu, "macs", macs,
                "gmacs_per_s", macsCount == null ? null : macsCount / (latency.p50 * 1e6),
                "energy", energy);
        log.write(summary);
        return summary;
    }

    /** The current time as the log records it: ISO 8601 UTC with milliseconds. */
    public static String utcNow() {
        SimpleDateFormat format = new SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", Locale.US);
        format.setTimeZone(TimeZone.getTimeZone("UTC"));
        return format.format(new Date());
    }

    /** Hex SHA-256 of a file. */
    public static String sha256(File file) throws IOException {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException impossible) {
            throw new IllegalStateException(impossible); // every Java platform must provide SHA-256
        }
        byte[] block = new byte[1 << 16];
        InputStream in = new FileInputStream(file);
        try {
            for (int n = in.read(block); n > 0; n = in.read(block)) {
                digest.update(block, 0, n);
            }
        } finally {
            in.close();
        }
        StringBuilder hex = new StringBuilder();
        for (byte b : digest.digest()) {
            hex.append(String.format("%02x", b & 0xff));
        }
        return hex.toString();
    }

    private static Map<String, Object> warmupSummary(double[] warmInvoke) {
        if (warmInvoke.length == 0) {
            return Json.object("n", 0, "mean", null, "max", null);
        }
        LatencyStats stats = LatencyStats.of(warmInvoke);
        return Json.object("n", warmInvoke.length, "mean", stats.mean, "max", stats.max);
    }

    static double[] column(List<double[]> runs, int index) {
        double[] values = new double[runs.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = runs.get(i)[index];
        }
        return values;
    }
}
