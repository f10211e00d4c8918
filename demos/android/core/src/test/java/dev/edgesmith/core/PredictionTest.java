package dev.edgesmith.core;

import static org.junit.Assert.assertEquals;

import java.io.File;
import java.util.Collections;
import java.util.List;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class PredictionTest {
    @Rule
    public TemporaryFolder folder = new TemporaryFolder();

    private ModelMetadata metadata(String json) throws Exception {
        File model = folder.newFile();
        return ModelMetadata.read(ModelMetadataTest.fakeTflite(model,
                json == null ? Collections.emptyMap() : Collections.singletonMap("edgesmith.json", json)));
    }

    @Test
    public void bestFirstWithTiesInIndexOrder() throws Exception {
        ModelMetadata meta = metadata("{\"labels\":[\"a\",\"b\",\"c\",\"d\"]}");
        List<Prediction> top = Prediction.topK(new float[] {0.1f, 0.4f, 0.1f, 0.4f}, 3, meta);
        assertEquals(3, top.size());
        assertEquals("b", top.get(0).label);
        assertEquals("d", top.get(1).label);
        assertEquals("a", top.get(2).label);
        assertEquals(0.4f, top.get(0).score, 0);
    }

    @Test
    public void modelWithoutLabelsShowsIndices() throws Exception {
        List<Prediction> top = Prediction.topK(new float[] {0.2f, 0.7f}, 5, metadata(null));
        assertEquals(2, top.size());
        assertEquals("1", top.get(0).label);
        assertEquals(1, top.get(0).index);
        assertEquals("0", top.get(1).label);
    }
}
