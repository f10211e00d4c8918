package dev.edgesmith.core;

/**
 * A problem the user can fix (a missing model, a model whose input is not an image, ...).
 *
 * <p>The message is one line, written to be shown as is: in a toast, on screen, or in the
 * benchmark's status file for {@code edgesmith deploy} to print.
 */
public class EdgesmithException extends Exception {
    private static final long serialVersionUID = 1L;

    public EdgesmithException(String message) {
        super(message);
    }
}
