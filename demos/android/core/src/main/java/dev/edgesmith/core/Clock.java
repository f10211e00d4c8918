package dev.edgesmith.core;

/** Time sources, behind an interface so that tests can drive them. */
public interface Clock {
    /** A monotonic clock for durations, in nanoseconds. */
    long nanoTime();

    /** Wall-clock time, Unix seconds (the log's {@code t}). */
    double wallSeconds();

    /** The system clocks. */
    Clock SYSTEM = new Clock() {
        @Override
        public long nanoTime() {
            return System.nanoTime();
        }

        @Override
        public double wallSeconds() {
            return System.currentTimeMillis() / 1000.0;
        }
    };
}
