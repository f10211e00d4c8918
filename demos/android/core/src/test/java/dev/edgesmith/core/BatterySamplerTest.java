package dev.edgesmith.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.Test;

/** The sampler thread, on the real clock, with a probe that stands in for BatteryManager. */
public class BatterySamplerTest {
    /** A phone drawing a steady 1.5 A at 3.8 V (5.7 W), reporting discharge as negative. */
    static final class SteadyProbe implements BatteryProbe {
        final AtomicInteger reads = new AtomicInteger();

        @Override
        public long currentMicroamps() {
            reads.incrementAndGet();
            return -1_500_000;
        }

        @Override
        public int voltageMillivolts() {
            return 3800;
        }

        @Override
        public boolean pluggedIn() {
            return false;
        }
    }

    @Test
    public void samplesThroughoutTheWindow() throws Exception {
        SteadyProbe probe = new SteadyProbe();
        BatterySampler sampler = new BatterySampler(probe, 5, Clock.SYSTEM);
        sampler.start();
        Thread.sleep(60);
        Map<String, Object> report = sampler.stop(12);
        int samples = (Integer) report.get("samples");
        assertTrue("samples: " + samples, samples >= 4 && samples == probe.reads.get());
        double seconds = (Double) report.get("seconds");
        assertTrue("seconds: " + seconds, seconds >= 0.06 && seconds < 5);
        assertEquals(5.7 * seconds, (Double) report.get("joules"), 1e-9);
        assertEquals(5.7 * seconds * 1000 / 12, (Double) report.get("mj_per_inference"), 1e-9);
    }

    @Test
    public void aShortWindowStillHasTwoSamples() throws Exception {
        BatterySampler sampler = new BatterySampler(new SteadyProbe(), 10_000, Clock.SYSTEM);
        sampler.start();
        Map<String, Object> report = sampler.stop(1);
        assertEquals(true, report.get("available"));
        assertEquals(2, report.get("samples"));
    }
}
