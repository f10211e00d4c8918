package dev.edgesmith.demo;

import android.content.Context;
import android.os.Build;
import android.os.PowerManager;

import dev.edgesmith.core.LinuxProc;
import dev.edgesmith.core.Session;

import java.io.File;
import java.util.Map;

/** What the log's header and summary say about the phone. */
final class DeviceFacts {
    private static final File CPU0_FREQ = new File("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq");
    private static final File PROC_STATUS = new File("/proc/self/status");

    private final PowerManager power;
    private Integer freqStart;
    private Boolean throttledStart;

    DeviceFacts(Context context) {
        power = (PowerManager) context.getSystemService(Context.POWER_SERVICE);
    }

    /** {@code header.device}: model, Android version, ABI, SoC, cores. */
    static Map<String, Object> device() {
        String soc = Build.VERSION.SDK_INT >= 31 ? Build.SOC_MODEL : Build.HARDWARE;
        return Session.deviceInfo(Build.MODEL, "Android " + Build.VERSION.RELEASE, Build.SUPPORTED_ABIS[0], soc,
                Runtime.getRuntime().availableProcessors());
    }

    /** Note the CPU state at the start of the timed window. */
    void start() {
        freqStart = LinuxProc.cpuFreqMhz(CPU0_FREQ);
        throttledStart = throttled();
    }

    /**
     * {@code summary.cpu} for the window since {@link #start}. Android gives apps no CPU
     * temperature, so temperatures are null; throttling is the thermal status (Android 10+).
     */
    Map<String, Object> cpu() {
        Boolean throttledEnd = throttled();
        Boolean throttled = throttledStart == null || throttledEnd == null ? null : throttledStart || throttledEnd;
        return Session.cpu(null, null, freqStart, LinuxProc.cpuFreqMhz(CPU0_FREQ), throttled);
    }

    /** Peak resident memory of the app, MiB. */
    static Double peakRssMb() {
        return LinuxProc.peakRssMb(PROC_STATUS);
    }

    private Boolean throttled() {
        if (Build.VERSION.SDK_INT < 29 || power == null) {
            return null;
        }
        return power.getCurrentThermalStatus() >= PowerManager.THERMAL_STATUS_MODERATE;
    }
}
