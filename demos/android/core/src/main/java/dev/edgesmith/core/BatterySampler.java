package dev.edgesmith.core;

import java.util.Map;

/**
 * Samples a {@link BatteryProbe} on a background thread between {@link #start} and {@link #stop}.
 *
 * <p>A sample is also taken at the very start and end of the window, so even a short window
 * has two. Many fuel gauges refresh only about once a second, so measure windows of several
 * seconds for a meaningful figure.
 *
 * <pre>{@code
 * BatterySampler sampler = new BatterySampler(probe, 100, Clock.SYSTEM);
 * sampler.start();
 * ... timed runs ...
 * Map<String, Object> energy = sampler.stop(runs);
 * }</pre>
 */
public final class BatterySampler {
    private final BatteryProbe probe;
    private final long intervalMs;
    private final Clock clock;
    private BatteryEnergy energy;
    private Thread thread;
    private volatile boolean running;
    private double startSeconds;

    public BatterySampler(BatteryProbe probe, long intervalMs, Clock clock) {
        this.probe = probe;
        this.intervalMs = intervalMs;
        this.clock = clock;
    }

    /** Begin a window: take a first sample and start sampling every {@code intervalMs}. */
    public synchronized void start() {
        energy = new BatteryEnergy();
        startSeconds = now();
        sample();
        running = true;
        thread = new Thread(new Runnable() {
            @Override
            public void run() {
                loop();
            }
        }, "edgesmith-battery");
        thread.setDaemon(true);
        thread.start();
    }

    /** End the window after {@code inferences} runs; return the log's {@code summary.energy}. */
    public synchronized Map<String, Object> stop(int inferences) throws InterruptedException {
        running = false;
        thread.interrupt();
        thread.join();
        sample();
        return energy.report(startSeconds, now(), inferences);
    }

    private void loop() {
        while (running) {
            try {
                Thread.sleep(intervalMs);
            } catch (InterruptedException stopped) {
                return;
            }
            sample();
        }
    }

    private void sample() {
        energy.add(now(), probe.currentMicroamps(), probe.voltageMillivolts(), probe.pluggedIn());
    }

    private double now() {
        return clock.nanoTime() / 1e9;
    }
}
