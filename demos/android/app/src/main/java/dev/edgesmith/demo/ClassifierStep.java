package dev.edgesmith.demo;

import android.graphics.Bitmap;

import dev.edgesmith.core.Benchmark;
import dev.edgesmith.core.Prediction;

import java.util.List;

/** One timed inference of a {@link LiteRtClassifier} on the next frame of a {@link FrameSource}. */
final class ClassifierStep implements Benchmark.Step {
    static final int TOP_K = 3;

    private final LiteRtClassifier classifier;
    private final FrameSource frames;
    private String source;

    ClassifierStep(LiteRtClassifier classifier, FrameSource frames) {
        this.classifier = classifier;
        this.frames = frames;
    }

    @Override
    public void pre() throws Exception {
        Bitmap frame = frames.next();
        source = frames.name();
        classifier.preprocess(frame);
    }

    @Override
    public void invoke() {
        classifier.invoke();
    }

    @Override
    public List<Prediction> post() {
        return classifier.topK(TOP_K);
    }

    @Override
    public String source() {
        return source;
    }
}
