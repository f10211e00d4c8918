package dev.edgesmith.core;

import java.util.ArrayList;
import java.util.List;

/**
 * One class of a classification result: its index, label and score.
 *
 * <pre>{@code
 * List<Prediction> top3 = Prediction.topK(scores, 3, metadata);
 * top3.get(0).label;   // "7"
 * }</pre>
 */
public final class Prediction {
    public final int index;
    public final String label;
    public final float score;

    public Prediction(int index, String label, float score) {
        this.index = index;
        this.label = label;
        this.score = score;
    }

    /**
     * The {@code k} best classes, best first; equal scores keep index order (as a stable
     * {@code numpy.argsort(-scores)} does). Classes without a label are named by their index.
     */
    public static List<Prediction> topK(float[] scores, int k, ModelMetadata metadata) {
        boolean[] taken = new boolean[scores.length];
        List<Prediction> best = new ArrayList<Prediction>();
        for (int rank = 0; rank < Math.min(k, scores.length); rank++) {
            int top = -1;
            for (int i = 0; i < scores.length; i++) {
                if (!taken[i] && (top < 0 || scores[i] > scores[top])) {
                    top = i;
                }
            }
            taken[top] = true;
            best.add(new Prediction(top, metadata.label(top), scores[top]));
        }
        return best;
    }

    @Override
    public String toString() {
        return String.format("%s %.3f", label, score);
    }
}
