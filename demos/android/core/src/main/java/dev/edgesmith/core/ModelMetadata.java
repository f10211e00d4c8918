package dev.edgesmith.core;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * edgesmith metadata read from a .tflite file: labels and preprocessing.
 *
 * <p>edgesmith appends a zip to the flatbuffer holding {@code edgesmith.json} and
 * {@code labels.txt} (offsets counted from the start of the file, as TFLite Support does), so
 * {@link ZipFile} reads them with no flatbuffer schema and no native library. A .tflite without
 * that zip (made by another tool) has no metadata: its classes are shown as indices.
 *
 * <pre>{@code
 * ModelMetadata meta = ModelMetadata.read(new File("digits.tflite"));
 * meta.label(3);            // "3" from labels.txt, or "3" as an index when there are no labels
 * meta.preprocessing();     // {"size":[28,28],"color":"grayscale","mean":[0.0],"std":[255.0]}
 * }</pre>
 */
public final class ModelMetadata {
    public static final String JSON_FILE = "edgesmith.json";
    public static final String LABELS_FILE = "labels.txt";
    private static final byte[] TFLITE_IDENTIFIER = {'T', 'F', 'L', '3'};

    private final Map<String, Object> json;
    private final List<String> labels;

    private ModelMetadata(Map<String, Object> json, List<String> labels) {
        this.json = json;
        this.labels = Collections.unmodifiableList(labels);
    }

    /** Read the metadata of the .tflite at {@code model}; a file without metadata gives an empty one. */
    public static ModelMetadata read(File model) throws EdgesmithException, IOException {
        checkTflite(model);
        ZipFile archive;
        try {
            archive = new ZipFile(model);
        } catch (ZipException noAppendedZip) {
            return new ModelMetadata(null, new ArrayList<String>());
        }
        try {
            Map<String, Object> json = readJson(model, archive);
            return new ModelMetadata(json, readLabels(json, archive));
        } finally {
            archive.close();
        }
    }

    /** The whole edgesmith.json object, or null when the model has none. */
    public Map<String, Object> json() {
        return json;
    }

    /** Class labels, empty when the model has none. */
    public List<String> labels() {
        return labels;
    }

    /** The label of class {@code index}, or the index itself when there is no label for it. */
    public String label(int index) {
        return index >= 0 && index < labels.size() ? labels.get(index) : String.valueOf(index);
    }

    /** The preprocessing object of edgesmith.json (size, color, mean, std); empty when absent. */
    public Map<String, Object> preprocessing() {
        return Json.asObject(json == null ? null : json.get("preprocessing"));
    }

    private static void checkTflite(File model) throws EdgesmithException, IOException {
        if (!model.isFile()) {
            throw new EdgesmithException(model.getPath() + ": no such model file");
        }
        byte[] head = new byte[8];
        InputStream in = new FileInputStream(model);
        try {
            if (in.read(head) != head.length || !identifierMatches(head)) {
                throw new EdgesmithException(model.getName() + ": not a .tflite model (no TFL3 identifier)");
            }
        } finally {
            in.close();
        }
    }

    private static boolean identifierMatches(byte[] head) {
        for (int i = 0; i < TFLITE_IDENTIFIER.length; i++) {
            if (head[4 + i] != TFLITE_IDENTIFIER[i]) {
                return false;
            }
        }
        return true;
    }

    private static Map<String, Object> readJson(File model, ZipFile archive) throws EdgesmithException, IOException {
        List<String> lines = readLines(archive, JSON_FILE);
        if (lines == null) {
            return null;
        }
        try {
            Object parsed = Json.parse(join(lines));
            if (!(parsed instanceof Map)) {
                throw new IllegalArgumentException("not a JSON object");
            }
            return Json.asObject(parsed);
        } catch (IllegalArgumentException e) {
            throw new EdgesmithException(model.getName() + ": edgesmith.json is not valid (" + e.getMessage() + ")");
        }
    }

    private static List<String> readLabels(Map<String, Object> json, ZipFile archive) throws IOException {
        List<Object> fromJson = Json.asList(json == null ? null : json.get("labels"));
        List<String> labels = new ArrayList<String>();
        if (fromJson != null) {
            for (Object label : fromJson) {
                labels.add(String.valueOf(label));
            }
            return labels;
        }
        List<String> lines = readLines(archive, LABELS_FILE);
        return lines == null ? labels : lines;
    }

    /** The lines of one zip member, or null when the zip has no such file. */
    private static List<String> readLines(ZipFile archive, String name) throws IOException {
        ZipEntry entry = archive.getEntry(name);
        if (entry == null) {
            return null;
        }
        List<String> lines = new ArrayList<String>();
        BufferedReader reader = new BufferedReader(new InputStreamReader(archive.getInputStream(entry), "UTF-8"));
        try {
            for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                lines.add(line);
            }
        } finally {
            reader.close();
        }
        return lines;
    }

    private static String join(List<String> lines) {
        StringBuilder text = new StringBuilder();
        for (String line : lines) {
            text.append(line).append('\n');
        }
        return text.toString();
    }
}
