package dev.edgesmith.demo;

import android.content.Intent;
import android.os.Bundle;
import android.util.Log;
import android.view.WindowManager;
import android.widget.ProgressBar;
import android.widget.TextView;

import androidx.appcompat.app.AppCompatActivity;

import dev.edgesmith.core.BatteryEnergy;
import dev.edgesmith.core.BatterySampler;
import dev.edgesmith.core.Benchmark;
import dev.edgesmith.core.BenchmarkRequest;
import dev.edgesmith.core.Clock;
import dev.edgesmith.core.EdgesmithException;
import dev.edgesmith.core.Json;
import dev.edgesmith.core.LogWriter;
import dev.edgesmith.core.Session;

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The benchmark mode, started from adb; see docs/android.md ("adb contract") for the intent.
 *
 * <p>It writes a JSONL log (header, one record per run, summary) to {@code files/logs/} and a
 * status file beside it ({@code running}, then {@code done} or {@code failed} with the message).
 */
public class BenchmarkActivity extends AppCompatActivity {
    private static final String TAG = "edgesmith";
    private static final long BATTERY_SAMPLE_MS = 100;

    private ProgressBar progressBar;
    private TextView statusText;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_benchmark);
        getWindow().addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON); // a sleeping phone is not benchmarked
        progressBar = findViewById(R.id.progress);
        statusText = findViewById(R.id.status);
        final Intent intent = getIntent();
        new Thread(new Runnable() {
            @Override
            public void run() {
                runRequest(intent);
            }
        }, "edgesmith-benchmark").start();
    }

    private void runRequest(final Intent intent) {
        File files = getExternalFilesDir(null);
        BenchmarkRequest request;
        try {
            request = BenchmarkRequest.fromExtras(new BenchmarkRequest.Extras() {
                @Override
                public String string(String key) {
                    return intent.getStringExtra(key);
                }

                @Override
                public Integer integer(String key) {
                    return intent.hasExtra(key) ? intent.getIntExtra(key, 0) : null;
                }
            }, files, Runtime.getRuntime().availableProcessors());
        } catch (EdgesmithException badRequest) {
            show("Bad request: " + badRequest.getMessage());
            Log.e(TAG, "benchmark request refused: " + badRequest.getMessage());
            return; // without a valid log name there is no status file to write
        }
        List<String> skipped = new ArrayList<String>();
        try {
            request.writeStatus("running", null, skipped);
            Map<String, Object> summary = benchmark(request, new File(files, BenchmarkRequest.IMAGES_DIR), skipped);
            request.writeStatus("done", null, skipped);
            show(describe(summary) + "\nlog: " + request.log);
            Log.i(TAG, "benchmark done: " + request.log);
        } catch (Exception failure) {
            String message = failure instanceof EdgesmithException ? failure.getMessage() : failure.toString();
            Log.e(TAG, "benchmark failed: " + message, failure);
            show("Failed: " + message);
            try {
                request.writeStatus("failed", message, skipped);
            } catch (Exception unwritable) {
                Log.e(TAG, "cannot write " + request.statusFile(), unwritable);
            }
        }
    }

    private Map<String, Object> benchmark(BenchmarkRequest request, File imagesDir, List<String> skipped)
            throws Exception {
        show("Loading " + request.model.getName() + " (" + request.delegate + ", " + request.threads + " threads)");
        LiteRtClassifier classifier = new LiteRtClassifier(request.model, request.delegate, request.threads);
        LogWriter log = new LogWriter(request.log);
        try {
            FrameSource frames = request.input.equals("images")
                    ? FrameSource.images(imagesDir, skipped)
                    : FrameSource.random(classifier.preprocessing.width, classifier.preprocessing.height);
            Session session = new Session(log);
            session.header(Session.modelInfo(request.model, classifier.metadata), DeviceFacts.device(),
                    request.delegate, request.threads,
                    Session.config(request.runs, request.warmup, request.input, request.energy ? BatteryEnergy.METER : "none"),
                    BuildConfig.VERSION_NAME);
            DeviceFacts facts = new DeviceFacts(this);
            facts.start();
            BatterySampler sampler = request.energy
                    ? new BatterySampler(new AndroidBatteryProbe(this), BATTERY_SAMPLE_MS, Clock.SYSTEM) : null;
            Map<String, Object> energy = new Benchmark(session, Clock.SYSTEM).run(
                    new ClassifierStep(classifier, frames), request.warmup, request.runs, sampler,
                    "energy measurement disabled (--es energy none)", new Benchmark.Progress() {
                        @Override
                        public void update(String phase, int done, int total) {
                            showProgress(phase, done, total);
                        }
                    });
            return session.finish(classifier.initMs, energy, facts.cpu(), DeviceFacts.peakRssMb(), null);
        } finally {
            log.close();
            classifier.close();
        }
    }

    private static String describe(Map<String, Object> summary) {
        Map<String, Object> latency = Json.asObject(summary.get("latency_ms"));
        Map<String, Object> energy = Json.asObject(summary.get("energy"));
        String energyText = Boolean.TRUE.equals(energy.get("available"))
                ? String.format("%.2f mJ/inference", (Double) energy.get("mj_per_inference"))
                : "energy: " + energy.get("reason");
        return String.format("%d runs  invoke p50 %.2f ms  p90 %.2f ms  p99 %.2f ms\n%s",
                ((Number) summary.get("runs")).intValue(), (Double) latency.get("p50"), (Double) latency.get("p90"),
                (Double) latency.get("p99"), energyText);
    }

    private void showProgress(final String phase, final int done, final int total) {
        if (done % 10 != 0 && done != total) {
            return; // redrawing every run would disturb the timings
        }
        runOnUiThread(new Runnable() {
            @Override
            public void run() {
                progressBar.setMax(total);
                progressBar.setProgress(done);
                statusText.setText(phase + " " + done + "/" + total);
            }
        });
    }

    private void show(final String text) {
        runOnUiThread(new Runnable() {
            @Override
            public void run() {
                statusText.setText(text);
            }
        });
    }
}
