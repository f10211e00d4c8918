package dev.edgesmith.core;

import java.nio.ByteBuffer;

/**
 * Real values into and out of a LiteRT tensor buffer, quantizing as the Python runtime does.
 *
 * <p>Integer tensors hold {@code round(x / scale) + zeroPoint}, saturated to the type's range;
 * rounding is half-to-even like {@code numpy.round}. Outputs come back as {@code (q - zeroPoint)
 * * scale}. Float tensors are copied as they are.
 *
 * <pre>{@code
 * ByteBuffer in = ByteBuffer.allocateDirect(n * type.bytes).order(ByteOrder.nativeOrder());
 * TensorCodec.write(pre.normalize(pixels), Type.INT8, 0.0039f, -128, in);
 * }</pre>
 */
public final class TensorCodec {
    /** The tensor element types an image classifier uses. */
    public enum Type {
        FLOAT32(4, 0, 0),
        UINT8(1, 0, 255),
        INT8(1, -128, 127);

        public final int bytes;
        final int min;
        final int max;

        Type(int bytes, int min, int max) {
            this.bytes = bytes;
            this.min = min;
            this.max = max;
        }
    }

    private TensorCodec() {
    }

    /** Write {@code values} into {@code out} (from its start), quantized when {@code type} is an integer. */
    public static void write(float[] values, Type type, float scale, int zeroPoint, ByteBuffer out) {
        out.rewind();
        for (float value : values) {
            if (type == Type.FLOAT32) {
                out.putFloat(value);
            } else {
                out.put((byte) quantize(value, scale, zeroPoint, type));
            }
        }
        out.rewind();
    }

    /** Read {@code count} values from {@code in} (from its start) as real numbers. */
    public static float[] read(ByteBuffer in, Type type, float scale, int zeroPoint, int count) {
        in.rewind();
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            if (type == Type.FLOAT32) {
                values[i] = in.getFloat();
            } else {
                int raw = type == Type.UINT8 ? in.get() & 0xff : in.get();
                values[i] = (raw - zeroPoint) * scale;
            }
        }
        in.rewind();
        return values;
    }

    /** {@code round(value / scale) + zeroPoint}, half to even, saturated to {@code type}'s range. */
    static int quantize(float value, float scale, int zeroPoint, Type type) {
        double q = Math.rint(value / scale) + zeroPoint;
        return (int) Math.max(type.min, Math.min(type.max, q));
    }
}
