package dev.edgesmith.core;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileReader;
import java.io.IOException;

/**
 * Process memory and CPU frequency from /proc and /sys, which Android apps can read.
 *
 * <pre>{@code
 * Double rss = LinuxProc.peakRssMb(new File("/proc/self/status"));
 * Integer mhz = LinuxProc.cpuFreqMhz(new File("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"));
 * }</pre>
 */
public final class LinuxProc {
    private LinuxProc() {
    }

    /** Peak resident memory (VmHWM) in MiB from a /proc/PID/status file, or null if unreadable. */
    public static Double peakRssMb(File status) {
        try {
            BufferedReader reader = new BufferedReader(new FileReader(status));
            try {
                for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                    if (line.startsWith("VmHWM:")) {
                        String kilobytes = line.substring("VmHWM:".length()).replace("kB", "").trim();
                        return Long.parseLong(kilobytes) / 1024.0;
                    }
                }
            } finally {
                reader.close();
            }
        } catch (IOException | NumberFormatException unreadable) {
            return null;
        }
        return null;
    }

    /** A cpufreq {@code scaling_cur_freq} file (kHz) in MHz, or null if unreadable (some phones deny it). */
    public static Integer cpuFreqMhz(File scalingCurFreq) {
        try {
            BufferedReader reader = new BufferedReader(new FileReader(scalingCurFreq));
            try {
                String line = reader.readLine();
                return line == null ? null : (int) (Long.parseLong(line.trim()) / 1000);
            } finally {
                reader.close();
            }
        } catch (IOException | NumberFormatException unreadable) {
            return null;
        }
    }
}
