package dev.edgesmith.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import dev.edgesmith.core.TensorCodec.Type;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.Test;

public class TensorCodecTest {
    @Test
    public void floatsPassThrough() {
        ByteBuffer buffer = ByteBuffer.allocate(3 * 4).order(ByteOrder.nativeOrder());
        float[] values = {-1.5f, 0f, 3.25f};
        TensorCodec.write(values, Type.FLOAT32, 0f, 0, buffer);
        assertArrayEquals(values, TensorCodec.read(buffer, Type.FLOAT32, 0f, 0, 3), 0);
    }

    @Test
    public void quantizesHalfToEvenAndSaturates() {
        // numpy: np.round([0.5, 1.5, 2.5, -0.5]) == [0, 2, 2, -0]
        assertEquals(0, TensorCodec.quantize(0.5f, 1f, 0, Type.INT8));
        assertEquals(2, TensorCodec.quantize(1.5f, 1f, 0, Type.INT8));
        assertEquals(2, TensorCodec.quantize(2.5f, 1f, 0, Type.INT8));
        assertEquals(-128, TensorCodec.quantize(-1000f, 1f, 0, Type.INT8));
        assertEquals(127, TensorCodec.quantize(1000f, 1f, 0, Type.INT8));
        assertEquals(255, TensorCodec.quantize(1000f, 1f, 0, Type.UINT8));
        assertEquals(0, TensorCodec.quantize(-1f, 1f, 0, Type.UINT8));
        assertEquals(-28, TensorCodec.quantize(0.5f, 0.005f, -128, Type.INT8));
    }

    @Test
    public void int8RoundTripsWithinHalfAStep() {
        float scale = 1 / 255f;
        int zeroPoint = -128;
        float[] values = {0f, 0.25f, 0.5f, 1f};
        ByteBuffer buffer = ByteBuffer.allocate(4);
        TensorCodec.write(values, Type.INT8, scale, zeroPoint, buffer);
        assertArrayEquals(values, TensorCodec.read(buffer, Type.INT8, scale, zeroPoint, 4), scale / 2);
    }

    @Test
    public void uint8ReadsAsUnsigned() {
        ByteBuffer buffer = ByteBuffer.wrap(new byte[] {(byte) 255, 0, (byte) 128});
        assertArrayEquals(new float[] {1f, 0f, 128 / 255f}, TensorCodec.read(buffer, Type.UINT8, 1 / 255f, 0, 3), 1e-6f);
    }
}
