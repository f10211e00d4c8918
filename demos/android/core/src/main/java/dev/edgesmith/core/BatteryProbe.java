package dev.edgesmith.core;

/**
 * Reads the battery, as Android's {@code BatteryManager} reports it.
 *
 * <p>The app implements it with {@code BATTERY_PROPERTY_CURRENT_NOW} and the
 * {@code ACTION_BATTERY_CHANGED} intent; tests implement it with recorded traces.
 */
public interface BatteryProbe {
    /** Instantaneous battery current in microamps, with the vendor's sign; {@link Integer#MIN_VALUE} if unsupported. */
    long currentMicroamps();

    /** Battery voltage in millivolts (the battery-changed intent's {@code EXTRA_VOLTAGE}). */
    int voltageMillivolts();

    /** True while a charger is plugged in: the battery current then no longer measures the device's draw. */
    boolean pluggedIn();
}
