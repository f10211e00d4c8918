package dev.edgesmith.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Map;
import org.junit.Test;

/** Expected values are numpy's: np.percentile(v, q) (linear) and np.std(v) (population). */
public class LatencyStatsTest {
    @Test
    public void matchesNumpyOnASmallList() {
        LatencyStats s = LatencyStats.of(new double[] {4, 1, 3, 2});
        assertEquals(1, s.min, 0);
        assertEquals(4, s.max, 0);
        assertEquals(2.5, s.mean, 1e-12);
        assertEquals(2.5, s.p50, 1e-12);  // np.percentile([1,2,3,4], 50)
        assertEquals(3.7, s.p90, 1e-12);  // np.percentile([1,2,3,4], 90)
        assertEquals(3.97, s.p99, 1e-12); // np.percentile([1,2,3,4], 99)
        assertEquals(Math.sqrt(1.25), s.std, 1e-12);
    }

    @Test
    public void oneValueIsEveryStatistic() {
        LatencyStats s = LatencyStats.of(new double[] {7.5});
        assertEquals(7.5, s.p99, 0);
        assertEquals(0, s.std, 0);
    }

    @Test
    public void percentileHitsSamplesExactly() {
        double[] sorted = {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
        assertEquals(90, LatencyStats.percentile(sorted, 90), 0);
        assertEquals(100, LatencyStats.percentile(sorted, 100), 0);
        assertEquals(0, LatencyStats.percentile(sorted, 0), 0);
        assertEquals(99, LatencyStats.percentile(sorted, 99), 1e-12);
    }

    @Test
    public void mapHasEveryFieldTheSchemaRequires() {
        Map<String, Object> map = LatencyStats.of(new double[] {1, 2}).toMap();
        for (String stat : new String[] {"min", "mean", "p50", "p90", "p99", "max", "std"}) {
            assertTrue(stat, map.get(stat) instanceof Double);
        }
        assertThrows(IllegalArgumentException.class, () -> LatencyStats.of(new double[0]));
    }

    @Test
    public void rollingWindowKeepsTheLastValues() {
        RollingWindow window = new RollingWindow(4);
        assertTrue(Double.isNaN(window.p50()));
        window.add(100);
        assertEquals(100, window.p90(), 0);
        for (double v : new double[] {1, 2, 3, 4}) {
            window.add(v); // 100 falls out
        }
        assertEquals(4, window.size());
        assertEquals(2.5, window.p50(), 1e-12);
        assertEquals(3.7, window.p90(), 1e-12);
        window.add(50);
        assertEquals(3.5, window.p50(), 1e-12); // window is now 2, 3, 4, 50
    }
}
