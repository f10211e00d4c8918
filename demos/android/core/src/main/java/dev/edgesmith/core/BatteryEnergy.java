package dev.edgesmith.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Energy per inference from BatteryManager samples: current x voltage, integrated over a window.
 *
 * <p>{@code BATTERY_PROPERTY_CURRENT_NOW} is in microamps, but its sign is the vendor's choice:
 * some phones report discharge as negative (Pixel), others as positive. While unplugged the
 * battery only discharges, so the sign that makes most samples positive is the discharge sign.
 * A few devices report milliamps instead: a discharge below 10 mA is not possible on a phone
 * that is awake and computing, so medians under 10,000 are read as milliamps.
 *
 * <p>Power {@code P = I * V} is integrated with the trapezoid rule over the window, the first
 * and last samples held to its edges. The result is gross: it includes the screen and
 * everything else the phone draws during the window.
 *
 * <pre>{@code
 * BatteryEnergy energy = new BatteryEnergy();
 * energy.add(t, probe.currentMicroamps(), probe.voltageMillivolts(), probe.pluggedIn());
 * Map<String, Object> summary = energy.report(start, stop, runs);   // the log's summary.energy
 * }</pre>
 */
public final class BatteryEnergy {
    public static final String METER = "android-battery";
    static final long MILLIAMP_THRESHOLD = 10000;

    private final List<double[]> samples = new ArrayList<double[]>(); // {t seconds, raw current, mV}
    private boolean unsupported;
    private boolean plugged;

    /** Record one sample taken at {@code seconds} (any monotonic origin). */
    public synchronized void add(double seconds, long rawCurrent, int millivolts, boolean pluggedIn) {
        if (rawCurrent == Integer.MIN_VALUE || rawCurrent == Long.MIN_VALUE) {
            unsupported = true;
            return;
        }
        plugged |= pluggedIn;
        samples.add(new double[] {seconds, rawCurrent, millivolts});
    }

    /** How many samples were recorded. */
    public synchronized int size() {
        return samples.size();
    }

    /**
     * The log's {@code summary.energy} for the window [{@code start}, {@code stop}] in which
     * {@code inferences} ran: measured figures, or {@code available: false} with the reason.
     */
    public synchronized Map<String, Object> report(double start, double stop, int inferences) {
        String problem = inferences < 1 ? "no inferences ran in the window" : problem(stop - start);
        if (problem != null) {
            return unavailable(problem);
        }
        double[] times = new double[samples.size()];
        double[] watts = new double[samples.size()];
        int sign = dischargeSign(column(1));
        double ampsPerUnit = Math.abs(median(column(1))) < MILLIAMP_THRESHOLD ? 1e-3 : 1e-6;
        for (int i = 0; i < times.length; i++) {
            double[] sample = samples.get(i);
            times[i] = sample[0];
            watts[i] = sign * sample[1] * ampsPerUnit * sample[2] * 1e-3;
        }
        double joules = integrate(times, watts, start, stop);
        double seconds = stop - start;
        return Json.object("available", true, "meter", METER, "estimated", false,
                "mj_per_inference", joules * 1000.0 / inferences, "avg_power_w", joules / seconds,
                "joules", joules, "seconds", seconds, "samples", times.length);
    }

    /** {@code summary.energy} when nothing was measured, saying why. */
    public static Map<String, Object> unavailable(String reason) {
        return Json.object("available", false, "meter", METER, "estimated", false, "reason", reason);
    }

    private String problem(double seconds) {
        if (unsupported) {
            return "this phone's BatteryManager does not report CURRENT_NOW";
        }
        if (plugged) {
            return "a charger was plugged in: unplug the phone to measure battery energy";
        }
        if (samples.size() < 2 || seconds <= 0) {
            return "fewer than 2 battery samples in the window: use more runs (the fuel gauge updates about once a second)";
        }
        if (median(column(1)) == 0) {
            return "the battery current reads 0 on this phone";
        }
        return null;
    }

    /** +1 when the vendor reports discharge as positive, -1 when as negative. */
    static int dischargeSign(double[] rawCurrents) {
        return median(rawCurrents) < 0 ? -1 : 1;
    }

    /**
     * Trapezoid integral of {@code watts} over [{@code start}, {@code stop}], holding the first
     * and last samples constant out to the window's edges.
     */
    static double integrate(double[] times, double[] watts, double start, double stop) {
        double joules = watts[0] * Math.max(0, times[0] - start);
        for (int i = 1; i < times.length; i++) {
            joules += (watts[i - 1] + watts[i]) / 2 * (times[i] - times[i - 1]);
        }
        return joules + watts[times.length - 1] * Math.max(0, stop - times[times.length - 1]);
    }

    private double[] column(int index) {
        return Session.column(samples, index);
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return LatencyStats.percentile(sorted, 50);
    }
}
