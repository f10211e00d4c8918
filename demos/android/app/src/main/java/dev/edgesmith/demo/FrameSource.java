package dev.edgesmith.demo;

import android.graphics.Bitmap;
import android.graphics.BitmapFactory;
import android.util.Log;

import dev.edgesmith.core.EdgesmithException;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/** Where frames come from: the camera, random pixels, or a folder of image files. */
abstract class FrameSource {
    private static final String TAG = "edgesmith";

    /** The next frame. */
    abstract Bitmap next() throws Exception;

    /** What the last frame was: a file name, "random", or a camera frame id (the log's {@code source}). */
    abstract String name();

    /** The same random-pixel frame every time, as the Python bench's {@code --input random}. */
    static FrameSource random(int width, int height) {
        Random random = new Random(0);
        int[] pixels = new int[width * height];
        for (int i = 0; i < pixels.length; i++) {
            pixels[i] = 0xff000000 | random.nextInt(0x1000000);
        }
        final Bitmap frame = Bitmap.createBitmap(pixels, width, height, Bitmap.Config.ARGB_8888);
        return new FrameSource() {
            @Override
            Bitmap next() {
                return frame;
            }

            @Override
            String name() {
                return "random";
            }
        };
    }

    /**
     * The images in {@code folder}, decoded once and cycled through. Files that cannot be decoded
     * are skipped, logged and added to {@code skipped}; the run goes on with the others.
     */
    static FrameSource images(File folder, List<String> skipped) throws EdgesmithException {
        File[] files = folder.listFiles();
        if (files == null || files.length == 0) {
            throw new EdgesmithException("no images in " + folder + ": adb push some there first");
        }
        Arrays.sort(files);
        final List<Bitmap> frames = new ArrayList<Bitmap>();
        final List<String> names = new ArrayList<String>();
        for (File file : files) {
            Bitmap bitmap = BitmapFactory.decodeFile(file.getPath());
            if (bitmap == null) {
                Log.w(TAG, file.getName() + ": cannot decode image, skipped");
                skipped.add(file.getName());
            } else {
                frames.add(bitmap);
                names.add(file.getName());
            }
        }
        if (frames.isEmpty()) {
            throw new EdgesmithException("none of the " + files.length + " files in " + folder + " is a decodable image");
        }
        return new FrameSource() {
            private int index = -1;

            @Override
            Bitmap next() {
                index = (index + 1) % frames.size();
                return frames.get(index);
            }

            @Override
            String name() {
                return names.get(index);
            }
        };
    }

    /** A source holding the latest camera frame; the camera screen sets it before each inference. */
    static final class Camera extends FrameSource {
        private Bitmap frame;
        private long frameId;

        void set(Bitmap frame) {
            this.frame = frame;
            frameId++;
        }

        @Override
        Bitmap next() {
            return frame;
        }

        @Override
        String name() {
            return "camera:" + frameId;
        }
    }
}
