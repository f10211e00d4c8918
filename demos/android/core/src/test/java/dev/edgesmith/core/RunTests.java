package dev.edgesmith.core;

import org.junit.internal.TextListener;
import org.junit.runner.JUnitCore;
import org.junit.runner.Result;
import org.junit.runner.notification.Failure;
import org.junit.runner.notification.RunListener;

/**
 * JUnitCore, but it names skipped tests (failed assumptions) instead of counting them as passed.
 *
 * <p>Usage: {@code java dev.edgesmith.core.RunTests dev.edgesmith.core.JsonTest ...}; exits 1 on failure.
 */
public final class RunTests {
    public static void main(String[] classNames) throws ClassNotFoundException {
        JUnitCore core = new JUnitCore();
        core.addListener(new TextListener(System.out));
        core.addListener(new RunListener() {
            @Override
            public void testAssumptionFailure(Failure failure) {
                System.out.println("SKIPPED " + failure.getDescription().getDisplayName() + ": " + failure.getMessage());
            }
        });
        Class<?>[] classes = new Class<?>[classNames.length];
        for (int i = 0; i < classNames.length; i++) {
            classes[i] = Class.forName(classNames[i]);
        }
        Result result = core.run(classes);
        System.out.println("ran " + result.getRunCount() + ", failed " + result.getFailureCount()
                + ", skipped " + result.getAssumptionFailureCount());
        System.exit(result.wasSuccessful() ? 0 : 1);
    }
}
