package dev.edgesmith.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/**
 * Reading metadata from .tflite files.
 *
 * <p>Synthetic files cover the branches; the real-file tests read a .tflite that the pytest
 * (tests/demos/test_android_java.py) built with TensorFlow and tagged with edgesmith's Python
 * writer, passed in through EDGESMITH_TEST_MODEL / EDGESMITH_TEST_METADATA /
 * EDGESMITH_TEST_BARE_MODEL. Run without them (test.sh alone), those tests are skipped.
 */
public class ModelMetadataTest {
    @Rule
    public TemporaryFolder folder = new TemporaryFolder();

    /** A file that starts like a .tflite flatbuffer, followed by a zip of {@code members} (none: no zip). */
    static File fakeTflite(File path, Map<String, String> members) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        bytes.write(new byte[] {0x18, 0, 0, 0, 'T', 'F', 'L', '3', 0, 0, 0, 0});
        if (!members.isEmpty()) {
            ByteArrayOutputStream zip = new ByteArrayOutputStream();
            try (ZipOutputStream out = new ZipOutputStream(zip)) {
                for (Map.Entry<String, String> member : members.entrySet()) {
                    out.putNextEntry(new ZipEntry(member.getKey()));
                    out.write(member.getValue().getBytes(StandardCharsets.UTF_8));
                    out.closeEntry();
                }
            }
            bytes.write(zip.toByteArray()); // offsets relative to the zip, as other tools may write them
        }
        Files.write(path.toPath(), bytes.toByteArray());
        return path;
    }

    private static Map<String, String> members(String... namesAndTexts) {
        Map<String, String> map = new LinkedHashMap<>();
        for (int i = 0; i < namesAndTexts.length; i += 2) {
            map.put(namesAndTexts[i], namesAndTexts[i + 1]);
        }
        return map;
    }

    @Test
    public void readsLabelsAndPreprocessingFromEdgesmithJson() throws Exception {
        File model = fakeTflite(folder.newFile("m.tflite"), members("edgesmith.json",
                "{\"labels\":[\"cat\",\"dog\"],\"preprocessing\":{\"size\":[96,96],\"color\":\"rgb\"}}",
                "labels.txt", "ignored\nfile\n"));
        ModelMetadata meta = ModelMetadata.read(model);
        assertEquals(Arrays.asList("cat", "dog"), meta.labels());
        assertEquals("dog", meta.label(1));
        assertEquals("rgb", meta.preprocessing().get("color"));
        assertEquals(Arrays.asList(96L, 96L), meta.preprocessing().get("size"));
    }

    @Test
    public void fallsBackToLabelsTxt() throws Exception {
        File model = fakeTflite(folder.newFile("m.tflite"), members("labels.txt", "zero\none\n"));
        ModelMetadata meta = ModelMetadata.read(model);
        assertNull(meta.json());
        assertEquals(Arrays.asList("zero", "one"), meta.labels());
        assertTrue(meta.preprocessing().isEmpty());
    }

    @Test
    public void modelWithoutMetadataShowsIndices() throws Exception {
        ModelMetadata meta = ModelMetadata.read(fakeTflite(folder.newFile("bare.tflite"), members()));
        assertNull(meta.json());
        assertTrue(meta.labels().isEmpty());
        assertEquals("7", meta.label(7));
    }

    @Test
    public void labelsBeyondTheListAreIndices() throws Exception {
        File model = fakeTflite(folder.newFile("m.tflite"), members("edgesmith.json", "{\"labels\":[\"a\"]}"));
        assertEquals("a", ModelMetadata.read(model).label(0));
        assertEquals("3", ModelMetadata.read(model).label(3));
    }

    @Test
    public void refusesFilesThatAreNotModels() throws Exception {
        File text = folder.newFile("notes.tflite");
        Files.write(text.toPath(), "hello, this is not a model".getBytes(StandardCharsets.UTF_8));
        EdgesmithException error = assertThrows(EdgesmithException.class, () -> ModelMetadata.read(text));
        assertEquals("notes.tflite: not a .tflite model (no TFL3 identifier)", error.getMessage());
        File missing = new File(folder.getRoot(), "missing.tflite");
        error = assertThrows(EdgesmithException.class, () -> ModelMetadata.read(missing));
        assertTrue(error.getMessage(), error.getMessage().endsWith("missing.tflite: no such model file"));
    }

    @Test
    public void reportsBrokenEdgesmithJson() throws Exception {
        File model = fakeTflite(folder.newFile("m.tflite"), members("edgesmith.json", "{\"labels\": ["));
        EdgesmithException error = assertThrows(EdgesmithException.class, () -> ModelMetadata.read(model));
        assertTrue(error.getMessage(), error.getMessage().startsWith("m.tflite: edgesmith.json is not valid"));
    }

    @Test
    public void readsWhatThePythonWriterWrote() throws Exception {
        String model = System.getenv("EDGESMITH_TEST_MODEL");
        String expected = System.getenv("EDGESMITH_TEST_METADATA");
        assumeTrue("EDGESMITH_TEST_MODEL not set (the pytest sets it)", model != null && expected != null);
        Map<String, Object> python = Json.asObject(Json.parse(
                new String(Files.readAllBytes(new File(expected).toPath()), StandardCharsets.UTF_8)));
        ModelMetadata meta = ModelMetadata.read(new File(model));
        assertEquals(python, meta.json());
        assertEquals(python.get("labels"), meta.labels());
        assertEquals(python.get("preprocessing"), meta.preprocessing());
    }

    @Test
    public void realModelWithoutMetadataHasNoLabels() throws Exception {
        String bare = System.getenv("EDGESMITH_TEST_BARE_MODEL");
        assumeTrue("EDGESMITH_TEST_BARE_MODEL not set (the pytest sets it)", bare != null);
        ModelMetadata meta = ModelMetadata.read(new File(bare));
        assertNull(meta.json());
        assertTrue(meta.labels().isEmpty());
        assertEquals("2", meta.label(2));
    }
}
