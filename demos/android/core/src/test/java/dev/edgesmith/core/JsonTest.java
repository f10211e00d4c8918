package dev.edgesmith.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
    @Test
    public void readsWhatPythonJsonDumpsWrites() {
        // json.dumps({"labels": ["zéro", "a\"b"], "preprocessing": {"size": [28, 28], "std": [255.0]},
        //             "macs": null, "ok": true, "tiny": 1e-05}, ensure_ascii=True)
        String python = "{\"labels\": [\"z\\u00e9ro\", \"a\\\"b\"], \"preprocessing\": {\"size\": [28, 28], "
                + "\"std\": [255.0]}, \"macs\": null, \"ok\": true, \"tiny\": 1e-05}";
        Map<String, Object> parsed = Json.asObject(Json.parse(python));
        assertEquals(Arrays.asList("zéro", "a\"b"), parsed.get("labels"));
        Map<String, Object> pre = Json.asObject(parsed.get("preprocessing"));
        assertEquals(Arrays.asList(28L, 28L), pre.get("size"));
        assertEquals(Arrays.asList(255.0), pre.get("std"));
        assertTrue(parsed.containsKey("macs"));
        assertNull(parsed.get("macs"));
        assertEquals(Boolean.TRUE, parsed.get("ok"));
        assertEquals(1e-5, (Double) parsed.get("tiny"), 0);
    }

    @Test
    public void writesCompactJsonThatReadsBack() {
        Map<String, Object> record = Json.object("type", "run", "i", 3, "t", 1.7e9, "pre_ms", 2.5e-4,
                "label", "tab\there \"quoted\" \u0001", "list", Arrays.asList(1, 2.5, null, false),
                "values", new double[] {0.5, 1.0});
        String line = Json.write(record);
        assertTrue(line, line.startsWith("{\"type\":\"run\",\"i\":3,"));
        assertTrue(line, line.contains("\\t") && line.contains("\\u0001") && !line.contains("\n"));
        Map<String, Object> back = Json.asObject(Json.parse(line));
        assertEquals(3L, back.get("i"));
        assertEquals(1.7e9, (Double) back.get("t"), 0);
        assertEquals(2.5e-4, (Double) back.get("pre_ms"), 0);
        assertEquals(record.get("label"), back.get("label"));
        assertEquals(Arrays.asList(1L, 2.5, null, false), back.get("list"));
        assertEquals(Arrays.asList(0.5, 1.0), back.get("values"));
    }

    @Test
    public void joinsSurrogatePairs() {
        assertEquals("\uD83D\uDE00", Json.parse("\"\\ud83d\\ude00\""));
    }

    @Test
    public void refusesNanAndInfinity() {
        assertThrows(IllegalArgumentException.class, () -> Json.write(Json.object("x", Double.NaN)));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Json.object("x", Double.POSITIVE_INFINITY)));
    }

    @Test
    public void namesTheOffsetOfSyntaxErrors() {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\": [1, }"));
        assertTrue(error.getMessage(), error.getMessage().contains("offset 10"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\": 1} extra"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("\"unterminated"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse(""));
    }

    @Test
    public void asListAndAsObjectTolerateOtherTypes() {
        assertNull(Json.asList("not a list"));
        assertTrue(Json.asObject(null).isEmpty());
        List<Object> list = Json.asList(Json.parse("[]"));
        assertTrue(list.isEmpty());
    }
}
