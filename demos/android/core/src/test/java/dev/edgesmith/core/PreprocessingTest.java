package dev.edgesmith.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class PreprocessingTest {
    private static final Map<String, Object> NONE = Collections.emptyMap();

    @Test
    public void defaultsComeFromTheInputTensor() throws Exception {
        Preprocessing rgb = Preprocessing.forInput(1, new int[] {1, 32, 48, 3}, false, NONE);
        assertEquals(32, rgb.height);
        assertEquals(48, rgb.width);
        assertFalse(rgb.grayscale);
        int[] white = new int[32 * 48];
        java.util.Arrays.fill(white, 0xffffffff);
        assertEquals(1.0f, rgb.normalize(white)[0], 0); // float input: pixels / 255

        Preprocessing gray = Preprocessing.forInput(1, new int[] {1, 28, 28, 1}, true, NONE);
        assertTrue(gray.grayscale);
        assertEquals(1, gray.channels());
        int[] pixels = new int[28 * 28];
        pixels[0] = 0xff808080;
        assertEquals(128f, gray.normalize(pixels)[0], 0); // integer input: raw 0..255
    }

    @Test
    public void metadataOverridesTheDefaults() throws Exception {
        Map<String, Object> meta = Json.asObject(Json.parse(
                "{\"size\":[2,1],\"color\":\"rgb\",\"mean\":[10,20,30],\"std\":[2,4,5]}"));
        Preprocessing pre = Preprocessing.forInput(1, new int[] {1, -1, -1, 3}, false, meta);
        assertEquals(2, pre.height);
        assertEquals(1, pre.width);
        float[] input = pre.normalize(new int[] {0xff0a141e, 0xff1e3246}); // (10,20,30), (30,50,70)
        assertArrayEquals(new float[] {0, 0, 0, 10, 7.5f, 8}, input, 0);
    }

    @Test
    public void bgrMetadataReversesTheChannels() throws Exception {
        Map<String, Object> meta = Json.asObject(Json.parse(
                "{\"size\":[1,1],\"color\":\"bgr\",\"mean\":[103.939,116.779,123.68],\"std\":[1]}"));
        Preprocessing pre = Preprocessing.forInput(1, new int[] {1, 1, 1, 3}, false, meta);
        assertTrue(pre.bgr);
        float[] input = pre.normalize(new int[] {0xff0a141e}); // R=10, G=20, B=30 -> B, G, R
        assertArrayEquals(new float[] {30 - 103.939f, 20 - 116.779f, 10 - 123.68f}, input, 1e-4f);
    }

    @Test
    public void grayscaleMatchesPillowLuma() {
        assertEquals(76, Preprocessing.luma(0xffff0000));  // Image.new("RGB", ..., (255, 0, 0)).convert("L")
        assertEquals(150, Preprocessing.luma(0xff00ff00));
        assertEquals(29, Preprocessing.luma(0xff0000ff));
        assertEquals(255, Preprocessing.luma(0xffffffff));
    }

    @Test
    public void inputsThatAreNotImagesGetAClearMessage() {
        EdgesmithException audio = assertThrows(EdgesmithException.class,
                () -> Preprocessing.forInput(1, new int[] {1, 3, 40}, true, NONE));
        assertEquals("the model's input is not an image (expected one [N,H,W,1|3] tensor, got 1 input(s), "
                + "the first [1, 3, 40])", audio.getMessage());
        assertThrows(EdgesmithException.class, () -> Preprocessing.forInput(2, new int[] {1, 8, 8, 3}, false, NONE));
        assertThrows(EdgesmithException.class, () -> Preprocessing.forInput(1, new int[] {1, 8, 8, 4}, false, NONE));
    }

    @Test
    public void colourThatContradictsTheInputIsRefused() {
        Map<String, Object> meta = Json.asObject(Json.parse("{\"color\":\"grayscale\"}"));
        EdgesmithException error = assertThrows(EdgesmithException.class,
                () -> Preprocessing.forInput(1, new int[] {1, 8, 8, 3}, false, meta));
        assertEquals("the metadata says grayscale but the model's input has 3 channel(s)", error.getMessage());
    }

    @Test
    public void wrongPixelCountIsAProgrammingError() throws Exception {
        Preprocessing pre = Preprocessing.forInput(1, new int[] {1, 4, 4, 3}, false, NONE);
        assertThrows(IllegalArgumentException.class, () -> pre.normalize(new int[15]));
    }

    /** Same pixels, same model: Java's input must equal edgesmith.runtime.Classifier.preprocess's. */
    @Test
    public void matchesThePythonClassifier() throws Exception {
        String fixture = System.getenv("EDGESMITH_TEST_PIXELS");
        assumeTrue("EDGESMITH_TEST_PIXELS not set (the pytest sets it)", fixture != null);
        Map<String, Object> data = Json.asObject(Json.parse(
                new String(Files.readAllBytes(new File(fixture).toPath()), StandardCharsets.UTF_8)));
        Preprocessing pre = Preprocessing.forInput(1, ints(data.get("shape")), false,
                Json.asObject(data.get("preprocessing")));
        int[] argb = ints(data.get("argb"));
        assertArrayEquals(floats(data.get("expected")), pre.normalize(argb), 1e-5f);
        int[] luma = ints(data.get("luma"));
        for (int i = 0; i < argb.length; i++) {
            assertEquals("pixel " + i, luma[i], Preprocessing.luma(argb[i]));
        }
    }

    static int[] ints(Object list) {
        List<Object> values = Json.asList(list);
        int[] out = new int[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Number) values.get(i)).intValue();
        }
        return out;
    }

    static float[] floats(Object list) {
        List<Object> values = Json.asList(list);
        float[] out = new float[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Number) values.get(i)).floatValue();
        }
        return out;
    }
}
