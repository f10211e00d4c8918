package dev.edgesmith.demo;

import android.Manifest;
import android.content.SharedPreferences;
import android.content.pm.PackageManager;
import android.graphics.Bitmap;
import android.graphics.Matrix;
import android.os.Bundle;
import android.os.SystemClock;
import android.util.Log;
import android.view.View;
import android.widget.AdapterView;
import android.widget.ArrayAdapter;
import android.widget.Spinner;
import android.widget.TextView;

import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContracts;
import androidx.appcompat.app.AppCompatActivity;
import androidx.camera.core.CameraSelector;
import androidx.camera.core.ImageAnalysis;
import androidx.camera.core.ImageProxy;
import androidx.camera.core.Preview;
import androidx.camera.lifecycle.ProcessCameraProvider;
import androidx.camera.view.PreviewView;
import androidx.core.content.ContextCompat;

import com.google.common.util.concurrent.ListenableFuture;

import dev.edgesmith.core.BatteryEnergy;
import dev.edgesmith.core.BatterySampler;
import dev.edgesmith.core.Benchmark;
import dev.edgesmith.core.BenchmarkRequest;
import dev.edgesmith.core.Clock;
import dev.edgesmith.core.EdgesmithException;
import dev.edgesmith.core.LogWriter;
import dev.edgesmith.core.Prediction;
import dev.edgesmith.core.RollingWindow;
import dev.edgesmith.core.Session;

import java.io.File;
import java.text.SimpleDateFormat;
import java.util.Arrays;
import java.util.Date;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The camera screen: top-3 classes, pre / invoke / post ms per frame, rolling p50 / p90, and a
 * JSONL log per session (one session per model, delegate and thread setting) in {@code files/logs/}.
 *
 * <p>The model is the newest .tflite in {@code files/models/}. All inference runs on one
 * analysis thread, which owns the classifier and the session.
 */
public class MainActivity extends AppCompatActivity {
    private static final String TAG = "edgesmith";
    private static final int ROLLING_WINDOW = 50;
    private static final long BATTERY_SAMPLE_MS = 200;
    private static final List<String> THREADS = Arrays.asList("1", "2", "4", "8");

    private final ExecutorService analysisThread = Executors.newSingleThreadExecutor();
    private final FrameSource.Camera camera = new FrameSource.Camera();
    private final ActivityResultLauncher<String> cameraPermission =
            registerForActivityResult(new ActivityResultContracts.RequestPermission(), granted -> {
                if (granted) {
                    startCamera();
                } else {
                    showMessage(getString(R.string.camera_denied, imagesDir()));
                }
            });

    private PreviewView previewView;
    private TextView results;
    private SharedPreferences settings;

    // Owned by the analysis thread.
    private LiteRtClassifier classifier;
    private LogWriter log;
    private Session session;
    private Benchmark bench;
    private ClassifierStep step;
    private BatterySampler sampler;
    private DeviceFacts facts;
    private RollingWindow invokeWindow;
    private RollingWindow totalWindow;
    private long sessionStartNanos;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        previewView = findViewById(R.id.preview);
        results = findViewById(R.id.results);
        settings = getSharedPreferences("settings", MODE_PRIVATE);
        setUpSpinner(R.id.delegate, BenchmarkRequest.DELEGATES, "delegate", "xnnpack");
        setUpSpinner(R.id.threads, THREADS, "threads", "4");
        if (!getPackageManager().hasSystemFeature(PackageManager.FEATURE_CAMERA_ANY)) {
            showMessage(getString(R.string.no_camera, imagesDir()));
        } else if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA)
                == PackageManager.PERMISSION_GRANTED) {
            startCamera();
        } else {
            cameraPermission.launch(Manifest.permission.CAMERA);
        }
    }

    @Override
    protected void onStart() {
        super.onStart();
        restartSession();
    }

    @Override
    protected void onStop() {
        analysisThread.execute(this::closeSession); // writes the summary
        super.onStop();
    }

    @Override
    protected void onDestroy() {
        analysisThread.shutdown();
        super.onDestroy();
    }

    private void setUpSpinner(int id, List<String> choices, final String key, String fallback) {
        Spinner spinner = findViewById(id);
        spinner.setAdapter(new ArrayAdapter<>(this, android.R.layout.simple_spinner_dropdown_item, choices));
        spinner.setSelection(Math.max(0, choices.indexOf(settings.getString(key, fallback))));
        spinner.setOnItemSelectedListener(new AdapterView.OnItemSelectedListener() {
            @Override
            public void onItemSelected(AdapterView<?> parent, View view, int position, long id) {
                String choice = choices.get(position);
                if (!choice.equals(settings.getString(key, fallback))) {
                    settings.edit().putString(key, choice).apply();
                    restartSession();
                }
            }

            @Override
            public void onNothingSelected(AdapterView<?> parent) {
            }
        });
    }

    private void startCamera() {
        ListenableFuture<ProcessCameraProvider> future = ProcessCameraProvider.getInstance(this);
        future.addListener(() -> {
            try {
                Preview preview = new Preview.Builder().build();
                preview.setSurfaceProvider(previewView.getSurfaceProvider());
                ImageAnalysis analysis = new ImageAnalysis.Builder()
                        .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                        .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                        .build();
                analysis.setAnalyzer(analysisThread, this::analyze);
                ProcessCameraProvider provider = future.get();
                provider.unbindAll();
                provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis);
            } catch (Exception noCamera) { // e.g. "No available camera can be found"
                Log.e(TAG, "camera unavailable", noCamera);
                showMessage(getString(R.string.no_camera, imagesDir()));
            }
        }, ContextCompat.getMainExecutor(this));
    }

    /** Runs on the analysis thread for every frame the camera delivers. */
    private void analyze(ImageProxy image) {
        try {
            if (classifier == null) {
                return; // no usable model: the message is on screen
            }
            camera.set(upright(image.toBitmap(), image.getImageInfo().getRotationDegrees()));
            Benchmark.Timing timing = bench.runOnce(step, Session.STEADY);
            double total = timing.preMs + timing.invokeMs + timing.postMs;
            invokeWindow.add(timing.invokeMs);
            totalWindow.add(total);
            showMessage(describe(timing, total));
        } catch (Exception failure) {
            Log.e(TAG, "frame failed", failure);
            showMessage("Inference failed: " + failure.getMessage());
        } finally {
            image.close();
        }
    }

    private String describe(Benchmark.Timing timing, double totalMs) {
        StringBuilder text = new StringBuilder();
        for (Prediction prediction : timing.predictions) {
            text.append(String.format(Locale.US, "%-20s %.3f\n", prediction.label, prediction.score));
        }
        double seconds = (SystemClock.elapsedRealtimeNanos() - sessionStartNanos) / 1e9;
        text.append(String.format(Locale.US, "pre %.2f  invoke %.2f  post %.2f ms\n",
                timing.preMs, timing.invokeMs, timing.postMs));
        text.append(String.format(Locale.US, "invoke p50 %.2f  p90 %.2f ms   total p50 %.2f  p90 %.2f ms\n",
                invokeWindow.p50(), invokeWindow.p90(), totalWindow.p50(), totalWindow.p90()));
        text.append(String.format(Locale.US, "%.1f fps  (%s, %d threads, last %d frames)",
                session.steadyRuns() / seconds, classifier.delegateName, classifier.threads, invokeWindow.size()));
        return text.toString();
    }

    private static Bitmap upright(Bitmap frame, int rotationDegrees) {
        if (rotationDegrees == 0) {
            return frame;
        }
        Matrix rotation = new Matrix();
        rotation.postRotate(rotationDegrees);
        return Bitmap.createBitmap(frame, 0, 0, frame.getWidth(), frame.getHeight(), rotation, true);
    }

    private void restartSession() {
        final String delegate = settings.getString("delegate", "xnnpack");
        final int threads = Integer.parseInt(settings.getString("threads", "4"));
        analysisThread.execute(() -> {
            closeSession();
            openSession(delegate, threads);
        });
    }

    private void openSession(String delegate, int threads) {
        File model = newestModel();
        if (model == null) {
            showMessage(getString(R.string.no_model, new File(getExternalFilesDir(null), BenchmarkRequest.MODELS_DIR)));
            return;
        }
        try {
            classifier = new LiteRtClassifier(model, delegate, threads);
            String stamp = new SimpleDateFormat("yyyyMMdd-HHmmss", Locale.US).format(new Date());
            log = new LogWriter(new File(new File(getExternalFilesDir(null), BenchmarkRequest.LOGS_DIR),
                    "camera-" + stamp + ".jsonl"));
            session = new Session(log);
            session.header(Session.modelInfo(model, classifier.metadata), DeviceFacts.device(), delegate, threads,
                    Session.config(0, 0, "camera", BatteryEnergy.METER), BuildConfig.VERSION_NAME);
            bench = new Benchmark(session, Clock.SYSTEM);
            step = new ClassifierStep(classifier, camera);
            invokeWindow = new RollingWindow(ROLLING_WINDOW);
            totalWindow = new RollingWindow(ROLLING_WINDOW);
            facts = new DeviceFacts(this);
            facts.start();
            sampler = new BatterySampler(new AndroidBatteryProbe(this), BATTERY_SAMPLE_MS, Clock.SYSTEM);
            sampler.start();
            sessionStartNanos = SystemClock.elapsedRealtimeNanos();
            showMessage("Loaded " + model.getName() + (classifier.metadata.labels().isEmpty()
                    ? " (no labels in its metadata: classes are shown as indices)" : ""));
        } catch (Exception failure) {
            Log.e(TAG, "cannot start a session", failure);
            showMessage(failure instanceof EdgesmithException ? failure.getMessage() : failure.toString());
            closeSession();
        }
    }

    /** Write the session's summary (when frames were classified) and release the model. */
    private void closeSession() {
        try {
            Map<String, Object> energy = sampler == null ? null : sampler.stop(session.steadyRuns());
            if (session != null && session.steadyRuns() > 0) {
                double seconds = (SystemClock.elapsedRealtimeNanos() - sessionStartNanos) / 1e9;
                session.finish(classifier.initMs, energy, facts.cpu(), DeviceFacts.peakRssMb(),
                        session.steadyRuns() / seconds);
            }
            if (log != null) {
                log.close();
            }
        } catch (Exception failure) {
            Log.e(TAG, "cannot finish the session log", failure);
        } finally {
            if (classifier != null) {
                classifier.close();
            }
            classifier = null;
            session = null;
            sampler = null;
            log = null;
        }
    }

    private File newestModel() {
        File[] models = new File(getExternalFilesDir(null), BenchmarkRequest.MODELS_DIR).listFiles(
                (folder, name) -> name.endsWith(".tflite"));
        File newest = null;
        for (File model : models == null ? new File[0] : models) {
            if (newest == null || model.lastModified() > newest.lastModified()) {
                newest = model;
            }
        }
        return newest;
    }

    private File imagesDir() {
        return new File(getExternalFilesDir(null), BenchmarkRequest.IMAGES_DIR);
    }

    private void showMessage(final String text) {
        runOnUiThread(() -> results.setText(text));
    }
}
