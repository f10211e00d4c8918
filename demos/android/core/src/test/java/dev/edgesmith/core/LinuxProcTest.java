package dev.edgesmith.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class LinuxProcTest {
    @Rule
    public TemporaryFolder folder = new TemporaryFolder();

    private File file(String text) throws Exception {
        File f = folder.newFile();
        Files.write(f.toPath(), text.getBytes(StandardCharsets.UTF_8));
        return f;
    }

    @Test
    public void peakRssFromProcStatus() throws Exception {
        File status = file("Name:\tdev.edgesmith.demo\nVmPeak:\t 9999 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1 kB\n");
        assertEquals(200.0, LinuxProc.peakRssMb(status), 0);
        assertNull(LinuxProc.peakRssMb(file("Name:\tnothing here\n")));
        assertNull(LinuxProc.peakRssMb(new File(folder.getRoot(), "missing")));
    }

    @Test
    public void thisJvmHasAPeakRss() {
        File self = new File("/proc/self/status");
        if (self.exists()) { // Linux: the same file Android apps read
            Double mb = LinuxProc.peakRssMb(self);
            assertNotNull(mb);
            assertTrue(mb > 1);
        }
    }

    @Test
    public void cpuFrequencyInMegahertz() throws Exception {
        assertEquals(Integer.valueOf(2400), LinuxProc.cpuFreqMhz(file("2400000\n")));
        assertNull(LinuxProc.cpuFreqMhz(file("")));
        assertNull(LinuxProc.cpuFreqMhz(new File(folder.getRoot(), "denied")));
    }
}
