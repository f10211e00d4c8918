package dev.edgesmith.core;

import java.util.List;
import java.util.Map;

/**
 * The benchmark loop: warm-up runs, then steady-state runs, each timed in three parts.
 *
 * <p>{@code pre} is preprocessing and the copy into the input tensor, {@code invoke} the
 * interpreter alone, {@code post} the copy out, dequantization and top-k, as in the Python
 * bench. Energy is measured over the steady-state runs only.
 *
 * <pre>{@code
 * Benchmark bench = new Benchmark(session, Clock.SYSTEM);
 * Map<String, Object> energy = bench.run(step, 10, 100, sampler, progress);
 * session.finish(initMs, energy, cpu, peakRss, null);
 * }</pre>
 */
public final class Benchmark {
    /** One inference, in its three timed parts. */
    public interface Step {
        void pre() throws Exception;

        void invoke() throws Exception;

        /** Read the outputs; return the predictions best first (may be empty). */
        List<Prediction> post() throws Exception;

        /** What this run's input was (an image file, a frame id, "random"), or null. */
        String source();
    }

    /** Told after every run, e.g. to move a progress bar. */
    public interface Progress {
        void update(String phase, int done, int total);
    }

    /** The three parts of one inference, in milliseconds, and what it predicted. */
    public static final class Timing {
        public final double preMs;
        public final double invokeMs;
        public final double postMs;
        public final List<Prediction> predictions;

        Timing(double preMs, double invokeMs, double postMs, List<Prediction> predictions) {
            this.preMs = preMs;
            this.invokeMs = invokeMs;
            this.postMs = postMs;
            this.predictions = predictions;
        }
    }

    private final Session session;
    private final Clock clock;

    public Benchmark(Session session, Clock clock) {
        this.session = session;
        this.clock = clock;
    }

    /**
     * Run {@code warmup} then {@code runs} timed inferences, logging each.
     *
     * @param sampler measures energy over the steady runs; null when none is available
     * @param unavailableReason why there is no sampler (used only when {@code sampler} is null)
     * @return the log's {@code summary.energy}
     */
    public Map<String, Object> run(Step step, int warmup, int runs, BatterySampler sampler, String unavailableReason,
            Progress progress) throws Exception {
        if (runs < 1 || warmup < 0) {
            throw new EdgesmithException("runs must be at least 1 and warmup at least 0");
        }
        timeRuns(step, Session.WARMUP, warmup, progress);
        if (sampler == null) {
            timeRuns(step, Session.STEADY, runs, progress);
            return BatteryEnergy.unavailable(unavailableReason);
        }
        sampler.start();
        timeRuns(step, Session.STEADY, runs, progress);
        return sampler.stop(runs);
    }

    private void timeRuns(Step step, String phase, int count, Progress progress) throws Exception {
        for (int i = 0; i < count; i++) {
            runOnce(step, phase);
            if (progress != null) {
                progress.update(phase, i + 1, count);
            }
        }
    }

    /**
     * Time and log one inference; the camera screen calls this once per frame.
     *
     * @param phase {@link Session#WARMUP} or {@link Session#STEADY}
     */
    public Timing runOnce(Step step, String phase) throws Exception {
        double wall = clock.wallSeconds();
        long t0 = clock.nanoTime();
        step.pre();
        long t1 = clock.nanoTime();
        step.invoke();
        long t2 = clock.nanoTime();
        List<Prediction> predictions = step.post();
        long t3 = clock.nanoTime();
        Timing timing = new Timing(millis(t1 - t0), millis(t2 - t1), millis(t3 - t2), predictions);
        session.record(phase, wall, timing.preMs, timing.invokeMs, timing.postMs,
                predictions.isEmpty() ? null : predictions.get(0), step.source());
        return timing;
    }

    private static double millis(long nanos) {
        return nanos / 1e6;
    }
}
