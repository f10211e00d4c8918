package dev.edgesmith.demo;

import android.content.Context;
import android.content.Intent;
import android.content.IntentFilter;
import android.os.BatteryManager;

import dev.edgesmith.core.BatteryProbe;

/** {@link BatteryProbe} over BatteryManager; the arithmetic (sign, units, integration) is in the core. */
final class AndroidBatteryProbe implements BatteryProbe {
    private final Context context;
    private final BatteryManager manager;

    AndroidBatteryProbe(Context context) {
        this.context = context.getApplicationContext();
        this.manager = (BatteryManager) context.getSystemService(Context.BATTERY_SERVICE);
    }

    @Override
    public long currentMicroamps() {
        return manager.getIntProperty(BatteryManager.BATTERY_PROPERTY_CURRENT_NOW);
    }

    @Override
    public int voltageMillivolts() {
        Intent battery = batteryChanged();
        return battery == null ? 0 : battery.getIntExtra(BatteryManager.EXTRA_VOLTAGE, 0);
    }

    @Override
    public boolean pluggedIn() {
        Intent battery = batteryChanged();
        return battery != null && battery.getIntExtra(BatteryManager.EXTRA_PLUGGED, 0) != 0;
    }

    /** The sticky battery-changed broadcast: reading it needs no receiver and no permission. */
    private Intent batteryChanged() {
        return context.registerReceiver(null, new IntentFilter(Intent.ACTION_BATTERY_CHANGED));
    }
}
