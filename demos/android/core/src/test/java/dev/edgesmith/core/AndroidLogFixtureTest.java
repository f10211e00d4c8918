package dev.edgesmith.core;

import static org.junit.Assert.assertEquals;

import java.io.File;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/**
 * Writes a log the way the app does, for the Python schema checks to read.
 *
 * <p>The pytest sets EDGESMITH_LOG_OUT and EDGESMITH_TEST_MODEL, then validates the file with
 * {@code edgesmith.runtime.logs.read_log} and recomputes the summary statistics with numpy. The
 * work timed here is real (preprocessing a frame, a dense layer standing in for the interpreter,
 * top-k), since LiteRT's Android library cannot run on this JVM; the battery is a probe replaying
 * a Pixel-style trace (negative microamps while discharging), since there is no phone.
 */
public class AndroidLogFixtureTest {
    @Rule
    public TemporaryFolder folder = new TemporaryFolder();

    /** Replays a discharge trace in BatteryManager units. */
    static final class TraceProbe implements BatteryProbe {
        private static final long[] MICROAMPS = {-612_000, -655_000, -640_000, -701_000, -598_000};
        private final boolean plugged;
        private int next;

        TraceProbe(boolean plugged) {
            this.plugged = plugged;
        }

        @Override
        public synchronized long currentMicroamps() {
            return MICROAMPS[next++ % MICROAMPS.length];
        }

        @Override
        public int voltageMillivolts() {
            return 3870;
        }

        @Override
        public boolean pluggedIn() {
            return plugged;
        }
    }

    /** Preprocess a frame, run a dense layer over it, take the top 3. */
    static final class DenseStep implements Benchmark.Step {
        private final Preprocessing pre;
        private final ModelMetadata metadata;
        private final float[][] weights;
        private final int[] frame;
        private final boolean camera;
        private float[] input;
        private float[] scores;
        private int frames;

        DenseStep(Preprocessing pre, ModelMetadata metadata, int classes, boolean camera) {
            Random random = new Random(classes);
            this.camera = camera;
            this.pre = pre;
            this.metadata = metadata;
            frame = new int[pre.width * pre.height];
            for (int i = 0; i < frame.length; i++) {
                frame[i] = 0xff000000 | random.nextInt(0x1000000);
            }
            weights = new float[classes][frame.length * pre.channels()];
            for (float[] row : weights) {
                for (int j = 0; j < row.length; j++) {
                    row[j] = (float) random.nextGaussian() * 0.05f;
                }
            }
        }

        @Override
        public void pre() {
            input = pre.normalize(frame);
        }

        @Override
        public void invoke() {
            scores = new float[weights.length];
            for (int c = 0; c < weights.length; c++) {
                for (int j = 0; j < input.length; j++) {
                    scores[c] += weights[c][j] * input[j];
                }
            }
        }

        @Override
        public List<Prediction> post() {
            return Prediction.topK(scores, 3, metadata);
        }

        @Override
        public String source() {
            return camera ? "camera:" + frames++ : "random";
        }
    }

    @Test
    public void writesABenchmarkAndACameraSession() throws Exception {
        String out = System.getenv("EDGESMITH_LOG_OUT");
        File logFile = out != null ? new File(out) : new File(folder.getRoot(), "android.jsonl");
        File model = modelFile();
        ModelMetadata metadata = ModelMetadata.read(model);
        Preprocessing pre = Preprocessing.forInput(1, new int[] {1, 16, 16, 3}, false, metadata.preprocessing());
        int classes = Math.max(metadata.labels().size(), 4);
        Map<String, Object> device = Session.deviceInfo("Pixel 8", "Android 14", "arm64-v8a", "Tensor G3", 9);
        try (LogWriter log = new LogWriter(logFile)) {
            benchmarkSession(log, model, metadata, device, new DenseStep(pre, metadata, classes, false));
            cameraSession(log, model, metadata, device, new DenseStep(pre, metadata, classes, true));
        }
        assertEquals(2 + 3 + 40 + 1 + 25 + 1, BenchmarkTest.readLog(logFile).size());
    }

    private void benchmarkSession(LogWriter log, File model, ModelMetadata metadata, Map<String, Object> device,
            Benchmark.Step step) throws Exception {
        Session session = startSession(log, model, metadata, device, "xnnpack", Session.config(40, 3, "random",
                "android-battery"));
        BatterySampler sampler = new BatterySampler(new TraceProbe(false), 1, Clock.SYSTEM);
        Map<String, Object> energy = new Benchmark(session, Clock.SYSTEM).run(step, 3, 40, sampler, null, null);
        Integer mhz = LinuxProc.cpuFreqMhz(new File("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"));
        session.finish(3.2, energy, Session.cpu(null, null, mhz, mhz, null),
                LinuxProc.peakRssMb(new File("/proc/self/status")), null);
    }

    private void cameraSession(LogWriter log, File model, ModelMetadata metadata, Map<String, Object> device,
            Benchmark.Step step) throws Exception {
        Session session = startSession(log, model, metadata, device, "gpu", Session.config(25, 0, "camera",
                "android-battery"));
        BatterySampler sampler = new BatterySampler(new TraceProbe(true), 1, Clock.SYSTEM);
        Benchmark bench = new Benchmark(session, Clock.SYSTEM);
        long started = System.nanoTime();
        sampler.start();
        for (int frame = 0; frame < 25; frame++) {
            bench.runOnce(step, Session.STEADY);
        }
        Map<String, Object> energy = sampler.stop(25);
        double fps = 25 / ((System.nanoTime() - started) / 1e9);
        session.finish(3.2, energy, Session.cpu(null, null, null, null, null), null, fps);
    }

    private static Session startSession(LogWriter log, File model, ModelMetadata metadata, Map<String, Object> device,
            String delegate, Map<String, Object> config) throws Exception {
        Session session = new Session(log);
        session.header(Session.modelInfo(model, metadata), device, delegate, 4, config, "0.1.0");
        return session;
    }

    private File modelFile() throws Exception {
        String real = System.getenv("EDGESMITH_TEST_MODEL");
        if (real != null) {
            return new File(real);
        }
        return ModelMetadataTest.fakeTflite(folder.newFile("digits.tflite"), Collections.singletonMap(
                "edgesmith.json", "{\"labels\":[\"a\",\"b\",\"c\",\"d\"],\"preprocessing\":{\"size\":[16,16]}}"));
    }
}
