package dev.edgesmith.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** The benchmark loop and the records it logs, on a scripted clock so every figure is known. */
public class BenchmarkTest {
    @Rule
    public TemporaryFolder folder = new TemporaryFolder();

    /** Each nanoTime() call advances by the next scripted step (ms), cycling. */
    static final class ScriptedClock implements Clock {
        private final double[] stepsMs;
        private int calls;
        private long now;

        ScriptedClock(double... stepsMs) {
            this.stepsMs = stepsMs;
        }

        @Override
        public long nanoTime() {
            now += (long) (stepsMs[calls++ % stepsMs.length] * 1e6);
            return now;
        }

        @Override
        public double wallSeconds() {
            return 1.8e9 + now / 1e9;
        }
    }

    /** A step that does nothing but report a fixed prediction. */
    static final class FixedStep implements Benchmark.Step {
        @Override
        public void pre() {
        }

        @Override
        public void invoke() {
        }

        @Override
        public List<Prediction> post() {
            return Collections.singletonList(new Prediction(3, "three", 0.9f));
        }

        @Override
        public String source() {
            return "random";
        }
    }

    static List<Map<String, Object>> readLog(File log) throws Exception {
        List<Map<String, Object>> records = new ArrayList<>();
        for (String line : Files.readAllLines(log.toPath(), StandardCharsets.UTF_8)) {
            records.add(Json.asObject(Json.parse(line)));
        }
        return records;
    }

    @Test
    public void logsEveryRunAndSummarizesTheSteadyOnes() throws Exception {
        File file = new File(folder.getRoot(), "logs/bench.jsonl");
        // per run, nanoTime() is read 4 times: start, after pre, after invoke, after post.
        // steps: (gap before start), pre, invoke, post
        ScriptedClock clock = new ScriptedClock(5, 0.5, 2.0, 0.25);
        try (LogWriter log = new LogWriter(file)) {
            Session session = new Session(log);
            session.header(Json.object("path", "m.tflite", "sha256", "x", "size_bytes", 1, "macs", 2_000_000L,
                    "metadata", null), Session.deviceInfo("pixel", "Android", "arm64-v8a", "Tensor G3", 9),
                    "xnnpack", 4, Session.config(5, 2, "random", "none"), "0.1.0");
            Map<String, Object> energy = new Benchmark(session, clock).run(new FixedStep(), 2, 5, null,
                    "energy measurement disabled", null);
            session.finish(12.5, energy, Session.cpu(null, null, null, null, null), 80.0, null);
        }
        List<Map<String, Object>> records = readLog(file);
        assertEquals(1 + 2 + 5 + 1, records.size());
        for (Map<String, Object> record : records) {
            assertEquals("edgesmith.log/1", record.get("schema"));
        }
        Map<String, Object> header = records.get(0);
        assertEquals("edgesmith-android", header.get("tool"));
        assertEquals("litert-android", Json.asObject(header.get("runtime")).get("backend"));
        assertTrue((String) header.get("time"), ((String) header.get("time")).matches("\\d{4}-\\d\\d-\\d\\dT[\\d:]{8}\\.\\d{3}Z"));

        Map<String, Object> run = records.get(3);
        assertEquals("steady", run.get("phase"));
        assertEquals(0L, run.get("i"));
        assertEquals(0.5, (Double) run.get("pre_ms"), 1e-9);
        assertEquals(2.0, (Double) run.get("invoke_ms"), 1e-9);
        assertEquals(0.25, (Double) run.get("post_ms"), 1e-9);
        assertEquals("three", run.get("label"));
        assertEquals("random", run.get("source"));

        Map<String, Object> summary = records.get(records.size() - 1);
        assertEquals(5L, summary.get("runs"));
        assertEquals(2.0, (Double) Json.asObject(summary.get("latency_ms")).get("p90"), 1e-9);
        assertEquals(500.0, (Double) summary.get("throughput_ips"), 1e-6);
        assertEquals(2.0, (Double) summary.get("first_invoke_ms"), 1e-9);
        assertEquals(2L, Json.asObject(summary.get("warmup_ms")).get("n"));
        assertEquals(1.0, (Double) summary.get("gmacs_per_s"), 1e-9); // 2e6 MACs in 2 ms
        Map<String, Object> energy = Json.asObject(summary.get("energy"));
        assertEquals(false, energy.get("available"));
        assertEquals("energy measurement disabled", energy.get("reason"));
    }

    @Test
    public void cameraFramesUseMeasuredFpsAndNoWarmup() throws Exception {
        File file = folder.newFile();
        try (LogWriter log = new LogWriter(file)) {
            Session session = new Session(log);
            Benchmark bench = new Benchmark(session, new ScriptedClock(30, 1, 3, 1));
            Benchmark.Timing timing = bench.runOnce(new FixedStep(), Session.STEADY);
            assertEquals(3.0, timing.invokeMs, 1e-9);
            assertEquals("three", timing.predictions.get(0).label);
            Map<String, Object> summary = session.finish(1, BatteryEnergy.unavailable("no"), null, null, 28.5);
            assertEquals(28.5, (Double) summary.get("throughput_ips"), 0);
            assertEquals(3.0, (Double) summary.get("first_invoke_ms"), 1e-9);
            assertNull(summary.get("gmacs_per_s"));
        }
    }

    @Test
    public void refusesImpossibleRunCounts() throws Exception {
        try (LogWriter log = new LogWriter(folder.newFile())) {
            Benchmark bench = new Benchmark(new Session(log), Clock.SYSTEM);
            assertThrows(EdgesmithException.class, () -> bench.run(new FixedStep(), 0, 0, null, "none", null));
            assertThrows(IllegalStateException.class, () -> new Session(log).finish(0, null, null, null, null));
        }
    }

    @Test
    public void statusFileIsReplacedWhole() throws Exception {
        File status = new File(folder.getRoot(), "bench.jsonl.status");
        LogWriter.writeAtomically(status, "{\"state\":\"running\"}\n");
        LogWriter.writeAtomically(status, "{\"state\":\"done\"}\n");
        assertEquals(Arrays.asList("{\"state\":\"done\"}"), Files.readAllLines(status.toPath()));
        assertEquals(1, folder.getRoot().list().length); // no temp file left behind
    }
}
