package dev.edgesmith.core;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * How camera pixels become the model's input: size, colour, and {@code (pixel - mean) / std}.
 *
 * <p>The rules are those of the Python {@code edgesmith.runtime.Classifier}, so a model gives the
 * same answer on the phone as on the Pi: preprocessing comes from edgesmith metadata, and what it
 * leaves out comes from the input tensor (size from the shape, grayscale for 1 channel and RGB
 * for 3, pixels scaled to [0, 1] for float inputs and left at 0..255 for integer ones).
 *
 * <pre>{@code
 * Preprocessing pre = Preprocessing.forInput(1, new int[] {1, 28, 28, 1}, false, meta.preprocessing());
 * float[] input = pre.normalize(argbPixels);   // argbPixels: pre.width * pre.height, row-major
 * }</pre>
 */
public final class Preprocessing {
    public final int height;
    public final int width;
    public final boolean grayscale;
    /** Channels in BGR order (caffe-style models such as keras.applications ResNet); RGB otherwise. */
    public final boolean bgr;
    private final float[] mean;
    private final float[] std;

    Preprocessing(int height, int width, boolean grayscale, boolean bgr, float[] mean, float[] std) {
        this.height = height;
        this.width = width;
        this.grayscale = grayscale;
        this.bgr = bgr;
        this.mean = mean;
        this.std = std;
    }

    /**
     * The preprocessing for a model's input.
     *
     * @param inputCount how many inputs the model has (an image classifier has one)
     * @param shape the input tensor's shape, e.g. {1, 224, 224, 3}
     * @param integerInput true when the input tensor is uint8/int8
     * @param metadata the {@code preprocessing} object of edgesmith metadata (may be empty)
     * @throws EdgesmithException when the input is not an image or contradicts the metadata
     */
    public static Preprocessing forInput(int inputCount, int[] shape, boolean integerInput, Map<String, Object> metadata)
            throws EdgesmithException {
        if (inputCount != 1 || shape.length != 4 || (shape[3] != 1 && shape[3] != 3)) {
            throw new EdgesmithException("the model's input is not an image (expected one [N,H,W,1|3] tensor, got "
                    + inputCount + " input(s), the first " + Arrays.toString(shape) + ")");
        }
        int[] size = intPair(metadata.get("size"), shape[1], shape[2]);
        Object color = metadata.get("color");
        boolean grayscale = color == null ? shape[3] == 1 : "grayscale".equals(color);
        boolean bgr = "bgr".equals(color);
        float[] mean = floats(metadata.get("mean"), 0f);
        float[] std = floats(metadata.get("std"), integerInput ? 1f : 255f);
        if ((grayscale ? 1 : 3) != shape[3]) {
            throw new EdgesmithException("the metadata says " + (grayscale ? "grayscale" : bgr ? "bgr" : "rgb")
                    + " but the model's input has " + shape[3] + " channel(s)");
        }
        return new Preprocessing(size[0], size[1], grayscale, bgr, mean, std);
    }

    /** Colour channels of the input: 1 (grayscale) or 3 (RGB). */
    public int channels() {
        return grayscale ? 1 : 3;
    }

    /**
     * Normalize {@code width * height} ARGB pixels (Android's {@code Bitmap.getPixels} layout)
     * into the model's float input, row-major HWC.
     */
    public float[] normalize(int[] argb) {
        if (argb.length != width * height) {
            throw new IllegalArgumentException("expected " + width * height + " pixels, got " + argb.length);
        }
        int channels = channels();
        float[] out = new float[argb.length * channels];
        for (int p = 0; p < argb.length; p++) {
            for (int c = 0; c < channels; c++) {
                int shift = bgr ? 8 * c : 16 - 8 * c; // ARGB holds R in bits 16-23, B in bits 0-7
                int value = grayscale ? luma(argb[p]) : (argb[p] >> shift) & 0xff;
                out[p * channels + c] = (value - pick(mean, c)) / pick(std, c);
            }
        }
        return out;
    }

    /** Pillow's RGB-to-L conversion (ITU-R 601-2 luma, in 16.16 fixed point), for parity with Python. */
    static int luma(int argb) {
        int r = (argb >> 16) & 0xff;
        int g = (argb >> 8) & 0xff;
        int b = argb & 0xff;
        return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    }

    private static float pick(float[] perChannel, int channel) {
        return perChannel.length == 1 ? perChannel[0] : perChannel[channel];
    }

    private static int[] intPair(Object value, int defaultFirst, int defaultSecond) {
        List<Object> list = Json.asList(value);
        if (list == null || list.size() != 2) {
            return new int[] {defaultFirst, defaultSecond};
        }
        return new int[] {((Number) list.get(0)).intValue(), ((Number) list.get(1)).intValue()};
    }

    private static float[] floats(Object value, float fallback) {
        List<Object> list = Json.asList(value);
        if (list == null || list.isEmpty()) {
            return new float[] {fallback};
        }
        float[] out = new float[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Number) list.get(i)).floatValue();
        }
        return out;
    }
}
