package dev.edgesmith.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class BenchmarkRequestTest {
    @Rule
    public TemporaryFolder folder = new TemporaryFolder();

    private static final File FILES = new File("/sdcard/Android/data/dev.edgesmith.demo/files");

    /** Extras as `adb shell am start --es/--ei` would deliver them. */
    private static BenchmarkRequest.Extras extras(Object... keysAndValues) {
        Map<String, Object> map = new HashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            map.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return new BenchmarkRequest.Extras() {
            @Override
            public String string(String key) {
                return map.get(key) instanceof String ? (String) map.get(key) : null;
            }

            @Override
            public Integer integer(String key) {
                return map.get(key) instanceof Integer ? (Integer) map.get(key) : null;
            }
        };
    }

    @Test
    public void defaults() throws Exception {
        BenchmarkRequest request = BenchmarkRequest.fromExtras(extras("model", "digits.tflite"), FILES, 8);
        assertEquals(new File(FILES, "models/digits.tflite"), request.model);
        assertEquals(100, request.runs);
        assertEquals(10, request.warmup);
        assertEquals(8, request.threads);
        assertEquals("xnnpack", request.delegate);
        assertEquals("random", request.input);
        assertEquals(new File(FILES, "logs/benchmark.jsonl"), request.log);
        assertEquals(new File(FILES, "logs/benchmark.jsonl.status"), request.statusFile());
        assertTrue(request.energy);
    }

    @Test
    public void everyExtra() throws Exception {
        BenchmarkRequest request = BenchmarkRequest.fromExtras(extras("model", "/data/local/tmp/m.tflite",
                "runs", 5, "warmup", 0, "threads", 2, "delegate", "gpu", "input", "images", "log", "a.jsonl",
                "energy", "none"), FILES, 8);
        assertEquals(new File("/data/local/tmp/m.tflite"), request.model);
        assertEquals(5, request.runs);
        assertEquals(0, request.warmup);
        assertEquals(2, request.threads);
        assertEquals("gpu", request.delegate);
        assertEquals("images", request.input);
        assertEquals(new File(FILES, "logs/a.jsonl"), request.log);
        assertFalse(request.energy);
    }

    @Test
    public void mistakesGetOneLineMessages() {
        assertMessage("no model given: add --es model NAME.tflite", extras());
        assertMessage("--ei runs must be at least 1, got 0", extras("model", "m.tflite", "runs", 0));
        assertMessage("--es delegate must be one of [xnnpack, gpu, nnapi, none], got 'tpu'",
                extras("model", "m.tflite", "delegate", "tpu"));
        assertMessage("--es log takes a file name", extras("model", "m.tflite", "log", "../x.jsonl"));
    }

    @Test
    public void statusFileSaysHowTheRunEnded() throws Exception {
        File files = folder.getRoot();
        BenchmarkRequest request = BenchmarkRequest.fromExtras(extras("model", "m.tflite", "log", "m.jsonl"), files, 4);
        request.writeStatus("running", null, Collections.emptyList());
        request.writeStatus("failed", "m.tflite: no such model file", Arrays.asList("broken.jpg"));
        Map<String, Object> status = Json.asObject(Json.parse(
                new String(Files.readAllBytes(request.statusFile().toPath()), StandardCharsets.UTF_8)));
        assertEquals("failed", status.get("state"));
        assertEquals(request.log.getPath(), status.get("log"));
        assertEquals("m.tflite: no such model file", status.get("error"));
        assertEquals(Arrays.asList("broken.jpg"), status.get("skipped"));
    }

    private static void assertMessage(String start, BenchmarkRequest.Extras extras) {
        EdgesmithException error = assertThrows(EdgesmithException.class,
                () -> BenchmarkRequest.fromExtras(extras, FILES, 4));
        assertTrue(error.getMessage(), error.getMessage().startsWith(start));
        assertFalse(error.getMessage().contains("\n"));
    }
}
