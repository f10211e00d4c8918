package dev.edgesmith.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.Map;
import org.junit.Test;

/**
 * Energy arithmetic on BatteryManager-style traces.
 *
 * <p>No phone here: the traces are in BatteryManager's units (microamps with the vendor's sign,
 * millivolts), shaped like a Pixel (negative while discharging), a Samsung-style positive
 * report, and a gauge that reports milliamps.
 */
public class BatteryEnergyTest {
    private static BatteryEnergy constant(long raw, int millivolts, double seconds) {
        BatteryEnergy energy = new BatteryEnergy();
        for (int i = 0; i <= 10; i++) {
            energy.add(i * seconds / 10, raw, millivolts, false);
        }
        return energy;
    }

    @Test
    public void negativeDischargeConvention() {
        // 500 mA at 4.0 V for 2 s = 2 W * 2 s = 4 J; 100 inferences -> 40 mJ each
        Map<String, Object> report = constant(-500_000, 4000, 2.0).report(0, 2.0, 100);
        assertEquals(true, report.get("available"));
        assertEquals("android-battery", report.get("meter"));
        assertEquals(false, report.get("estimated"));
        assertEquals(4.0, (Double) report.get("joules"), 1e-9);
        assertEquals(40.0, (Double) report.get("mj_per_inference"), 1e-9);
        assertEquals(2.0, (Double) report.get("avg_power_w"), 1e-9);
        assertEquals(2.0, (Double) report.get("seconds"), 0);
        assertEquals(11, report.get("samples"));
    }

    @Test
    public void positiveDischargeConventionGivesTheSameEnergy() {
        assertEquals(4.0, (Double) constant(500_000, 4000, 2.0).report(0, 2.0, 100).get("joules"), 1e-9);
    }

    @Test
    public void milliampGaugesAreRecognised() {
        assertEquals(4.0, (Double) constant(-500, 4000, 2.0).report(0, 2.0, 100).get("joules"), 1e-9);
    }

    @Test
    public void signIsTheMajorityOfSamples() {
        assertEquals(-1, BatteryEnergy.dischargeSign(new double[] {-400_000, -420_000, 15_000}));
        assertEquals(1, BatteryEnergy.dischargeSign(new double[] {400_000, 420_000, -15_000}));
    }

    @Test
    public void trapezoidIsExactOnARampAndHoldsTheEdges() {
        double[] times = {1, 2, 3};
        double[] watts = {1, 2, 3};
        // ramp 1..3 W over [1, 3] s = 4 J; held 1 W on [0, 1] and 3 W on [3, 4] -> +4 J
        assertEquals(4.0, BatteryEnergy.integrate(times, watts, 1, 3), 1e-12);
        assertEquals(8.0, BatteryEnergy.integrate(times, watts, 0, 4), 1e-12);
    }

    @Test
    public void unsupportedGaugeIsReportedNotInvented() {
        BatteryEnergy energy = new BatteryEnergy();
        energy.add(0, Integer.MIN_VALUE, 4000, false);
        energy.add(1, Integer.MIN_VALUE, 4000, false);
        assertUnavailable(energy.report(0, 1, 10), "does not report CURRENT_NOW");
    }

    @Test
    public void chargingMakesEnergyUnavailable() {
        BatteryEnergy energy = constant(-500_000, 4000, 1.0);
        energy.add(1.1, 800_000, 4200, true);
        assertUnavailable(energy.report(0, 1.1, 10), "charger was plugged in");
    }

    @Test
    public void tooFewSamplesOrZeroCurrent() {
        BatteryEnergy one = new BatteryEnergy();
        one.add(0, -400_000, 3900, false);
        assertUnavailable(one.report(0, 0.01, 1), "fewer than 2 battery samples");
        assertUnavailable(constant(0, 3900, 1.0).report(0, 1.0, 10), "reads 0");
        assertUnavailable(constant(-400_000, 3900, 1.0).report(0, 1.0, 0), "no inferences");
    }

    private static void assertUnavailable(Map<String, Object> report, String reason) {
        assertEquals(false, report.get("available"));
        assertEquals("android-battery", report.get("meter"));
        String text = (String) report.get("reason");
        assertTrue(text, text.contains(reason));
    }
}
