package dev.edgesmith.demo;

import android.graphics.Bitmap;
import android.os.Build;
import android.os.SystemClock;

import dev.edgesmith.core.EdgesmithException;
import dev.edgesmith.core.ModelMetadata;
import dev.edgesmith.core.Prediction;
import dev.edgesmith.core.Preprocessing;
import dev.edgesmith.core.TensorCodec;

import java.io.Closeable;
import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Delegate;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;
import org.tensorflow.lite.gpu.CompatibilityList;
import org.tensorflow.lite.gpu.GpuDelegate;
import org.tensorflow.lite.nnapi.NnApiDelegate;

/**
 * A LiteRT interpreter over an image classifier, with labels and preprocessing from edgesmith metadata.
 *
 * <p>Inference is split as the logs split it: {@link #preprocess} (resize, normalize, quantize
 * into the input buffer), {@link #invoke} (the interpreter; LiteRT's Java API copies the input
 * and output buffers inside {@code run}, so this includes those copies) and {@link #topK}.
 * Use one instance from one thread.
 */
final class LiteRtClassifier implements Closeable {
    final File modelFile;
    final ModelMetadata metadata;
    final Preprocessing preprocessing;
    final String delegateName;
    final int threads;
    final double initMs;

    private final Interpreter interpreter;
    private final Delegate delegate;
    private final TensorSpec input;
    private final TensorSpec output;
    private final int[] pixels;

    /** Shape, type and quantization of one tensor, with a direct buffer for it. */
    private static final class TensorSpec {
        final TensorCodec.Type type;
        final float scale;
        final int zeroPoint;
        final int count;
        final ByteBuffer buffer;

        TensorSpec(Tensor tensor) throws EdgesmithException {
            type = codecType(tensor.dataType());
            scale = tensor.quantizationParams().getScale();
            zeroPoint = tensor.quantizationParams().getZeroPoint();
            count = tensor.numElements();
            buffer = ByteBuffer.allocateDirect(tensor.numBytes()).order(ByteOrder.nativeOrder());
        }
    }

    /**
     * Load {@code modelFile} with {@code delegateName} (xnnpack, gpu, nnapi or none) and {@code threads}.
     *
     * @throws EdgesmithException for problems the user can fix: a missing file, a model whose
     *     input is not an image, a delegate this phone lacks
     */
    LiteRtClassifier(File modelFile, String delegateName, int threads) throws EdgesmithException, IOException {
        this.modelFile = modelFile;
        this.delegateName = delegateName;
        this.threads = threads;
        metadata = ModelMetadata.read(modelFile);
        long started = SystemClock.elapsedRealtimeNanos();
        Interpreter.Options options = new Interpreter.Options().setNumThreads(threads);
        options.setUseXNNPACK(delegateName.equals("xnnpack"));
        delegate = createDelegate(delegateName);
        if (delegate != null) {
            options.addDelegate(delegate);
        }
        try {
            interpreter = new Interpreter(modelFile, options);
        } catch (IllegalArgumentException | IllegalStateException refused) {
            closeDelegate();
            throw new EdgesmithException(modelFile.getName() + ": LiteRT cannot load it with the "
                    + delegateName + " delegate (" + firstLine(refused.getMessage()) + ")");
        }
        initMs = (SystemClock.elapsedRealtimeNanos() - started) / 1e6;
        Tensor in = interpreter.getInputTensor(0);
        input = new TensorSpec(in);
        output = new TensorSpec(interpreter.getOutputTensor(0));
        preprocessing = Preprocessing.forInput(interpreter.getInputTensorCount(), in.shape(),
                input.type != TensorCodec.Type.FLOAT32, metadata.preprocessing());
        pixels = new int[preprocessing.width * preprocessing.height];
    }

    /** Resize {@code frame} to the input size and write it, normalized and quantized, into the input buffer. */
    void preprocess(Bitmap frame) {
        Bitmap scaled = Bitmap.createScaledBitmap(frame, preprocessing.width, preprocessing.height, true);
        scaled.getPixels(pixels, 0, preprocessing.width, 0, 0, preprocessing.width, preprocessing.height);
        if (scaled != frame) {
            scaled.recycle();
        }
        TensorCodec.write(preprocessing.normalize(pixels), input.type, input.scale, input.zeroPoint, input.buffer);
    }

    /** Run the interpreter on the prepared input. */
    void invoke() {
        output.buffer.rewind();
        interpreter.run(input.buffer, output.buffer);
    }

    /** The {@code k} best classes of the last output, dequantized. */
    List<Prediction> topK(int k) {
        float[] scores = TensorCodec.read(output.buffer, output.type, output.scale, output.zeroPoint, output.count);
        return Prediction.topK(scores, k, metadata);
    }

    @Override
    public void close() {
        interpreter.close();
        closeDelegate();
    }

    private static Delegate createDelegate(String name) throws EdgesmithException {
        if (name.equals("gpu")) {
            CompatibilityList compatibility = new CompatibilityList();
            if (!compatibility.isDelegateSupportedOnThisDevice()) {
                throw new EdgesmithException("the GPU delegate does not support this phone's GPU; choose xnnpack");
            }
            return new GpuDelegate(compatibility.getBestOptionsForThisDevice());
        }
        if (name.equals("nnapi")) {
            if (Build.VERSION.SDK_INT < 27) {
                throw new EdgesmithException("NNAPI needs Android 8.1 (API 27) or newer; choose xnnpack");
            }
            return new NnApiDelegate();
        }
        return null; // xnnpack and none are interpreter options, not delegates
    }

    private void closeDelegate() {
        if (delegate instanceof AutoCloseable) {
            try {
                ((AutoCloseable) delegate).close();
            } catch (Exception ignored) {
                // closing a delegate frees native memory only; nothing to report
            }
        }
    }

    private static TensorCodec.Type codecType(DataType type) throws EdgesmithException {
        switch (type) {
            case FLOAT32:
                return TensorCodec.Type.FLOAT32;
            case UINT8:
                return TensorCodec.Type.UINT8;
            case INT8:
                return TensorCodec.Type.INT8;
            default:
                throw new EdgesmithException("tensors of type " + type + " are not supported (float32, uint8, int8 are)");
        }
    }

    private static String firstLine(String text) {
        return text == null ? "no detail" : text.split("\n", 2)[0];
    }
}
