package dev.edgesmith.core;

import java.io.Closeable;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Appends records to a JSONL benchmark log ({@code edgesmith.log/1}, see docs/log-schema.md).
 *
 * <p>Each record is stamped with the schema, written as one line and flushed at once, so a
 * killed app loses at most the line being written; readers drop a truncated last line.
 *
 * <pre>{@code
 * LogWriter log = new LogWriter(new File(getExternalFilesDir(null), "logs/bench.jsonl"));
 * log.write(Json.object("type", "run", "i", 0, ...));
 * log.close();
 * }</pre>
 */
public final class LogWriter implements Closeable {
    public static final String SCHEMA = "edgesmith.log/1";

    private final File path;
    private final Writer out;

    /** Open {@code path} for appending, creating its folder. */
    public LogWriter(File path) throws IOException {
        this.path = path;
        File folder = path.getAbsoluteFile().getParentFile();
        if (!folder.isDirectory() && !folder.mkdirs()) {
            throw new IOException(folder + ": cannot create the log folder");
        }
        out = new OutputStreamWriter(new FileOutputStream(path, true), "UTF-8");
    }

    /** The file being written. */
    public File path() {
        return path;
    }

    /** Write {@code record}, with {@code "schema"} first, as one flushed line. */
    public synchronized void write(Map<String, Object> record) throws IOException {
        Map<String, Object> stamped = new LinkedHashMap<String, Object>();
        stamped.put("schema", SCHEMA);
        stamped.putAll(record);
        out.write(Json.write(stamped));
        out.write('\n');
        out.flush();
    }

    @Override
    public synchronized void close() throws IOException {
        out.close();
    }

    /** Write {@code text} to {@code target} through a temp file and a rename: never a half-written file. */
    public static void writeAtomically(File target, String text) throws IOException {
        File temp = new File(target.getAbsoluteFile().getParentFile(), "." + target.getName() + ".tmp");
        Writer writer = new OutputStreamWriter(new FileOutputStream(temp), "UTF-8");
        try {
            writer.write(text);
        } finally {
            writer.close();
        }
        if (!temp.renameTo(target)) {
            temp.delete();
            throw new IOException(target + ": cannot replace the file");
        }
    }
}
