package dev.edgesmith.core;

import java.util.Arrays;

/**
 * The last {@code capacity} latencies, for the live p50 / p90 shown on screen.
 *
 * <pre>{@code
 * RollingWindow invoke = new RollingWindow(50);
 * invoke.add(invokeMs);
 * String text = String.format("p50 %.1f  p90 %.1f ms", invoke.p50(), invoke.p90());
 * }</pre>
 */
public final class RollingWindow {
    private final double[] values;
    private int count;
    private int next;

    public RollingWindow(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be at least 1");
        }
        values = new double[capacity];
    }

    /** Add one value, dropping the oldest once the window is full. */
    public void add(double value) {
        values[next] = value;
        next = (next + 1) % values.length;
        count = Math.min(count + 1, values.length);
    }

    /** How many values the window holds now. */
    public int size() {
        return count;
    }

    /** Median of the window (NaN while empty). */
    public double p50() {
        return percentile(50);
    }

    /** 90th percentile of the window (NaN while empty). */
    public double p90() {
        return percentile(90);
    }

    private double percentile(double q) {
        if (count == 0) {
            return Double.NaN;
        }
        double[] sorted = Arrays.copyOf(values, count);
        Arrays.sort(sorted);
        return LatencyStats.percentile(sorted, q);
    }
}
