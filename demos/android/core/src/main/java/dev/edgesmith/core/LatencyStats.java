package dev.edgesmith.core;

import java.util.Arrays;
import java.util.Map;

/**
 * min / mean / p50 / p90 / p99 / max / std of a list of milliseconds, as the Python bench computes them.
 *
 * <p>Percentiles use numpy's default ("linear") interpolation and the standard deviation is the
 * population one (numpy's {@code std}, ddof = 0), so the phone's summary and a summary recomputed
 * in Python from the same run records agree.
 *
 * <pre>{@code
 * LatencyStats s = LatencyStats.of(new double[] {1.0, 2.0, 3.0, 4.0});
 * s.p50;   // 2.5
 * s.p90;   // 3.7
 * }</pre>
 */
public final class LatencyStats {
    public final double min;
    public final double mean;
    public final double p50;
    public final double p90;
    public final double p99;
    public final double max;
    public final double std;

    private LatencyStats(double[] sorted) {
        min = sorted[0];
        max = sorted[sorted.length - 1];
        mean = mean(sorted);
        p50 = percentile(sorted, 50);
        p90 = percentile(sorted, 90);
        p99 = percentile(sorted, 99);
        std = populationStd(sorted, mean);
    }

    /** Statistics of {@code valuesMs}, which must not be empty. */
    public static LatencyStats of(double[] valuesMs) {
        if (valuesMs.length == 0) {
            throw new IllegalArgumentException("no values to summarize");
        }
        double[] sorted = valuesMs.clone();
        Arrays.sort(sorted);
        return new LatencyStats(sorted);
    }

    /**
     * The {@code q}-th percentile (0..100) of ascending {@code sorted}, with numpy's linear method:
     * position {@code (n - 1) * q / 100}, interpolated between its two neighbours.
     */
    public static double percentile(double[] sorted, double q) {
        double position = (sorted.length - 1) * (q / 100.0);
        int below = (int) Math.floor(position);
        int above = Math.min(below + 1, sorted.length - 1);
        return lerp(sorted[below], sorted[above], position - below);
    }

    /** The log's form: {"min":..,"mean":..,"p50":..,"p90":..,"p99":..,"max":..,"std":..}. */
    public Map<String, Object> toMap() {
        return Json.object("min", min, "mean", mean, "p50", p50, "p90", p90, "p99", p99, "max", max, "std", std);
    }

    /** numpy's {@code _lerp}: from the nearer end, so that t = 1 gives exactly {@code b}. */
    private static double lerp(double a, double b, double t) {
        double difference = b - a;
        return t >= 0.5 ? b - difference * (1 - t) : a + difference * t;
    }

    static double mean(double[] values) {
        double sum = 0;
        for (double v : values) {
            sum += v;
        }
        return sum / values.length;
    }

    private static double populationStd(double[] values, double mean) {
        double squares = 0;
        for (double v : values) {
            squares += (v - mean) * (v - mean);
        }
        return Math.sqrt(squares / values.length);
    }
}
