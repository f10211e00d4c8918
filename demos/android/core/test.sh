#!/usr/bin/env bash
# Compile the Android demo's plain-Java core and run its JUnit 4 tests with the JDK alone.
#
#   demos/android/core/test.sh                 # build in core/build/, run every test
#   BUILD_DIR=out/core demos/android/core/test.sh
#
# Needs javac/java 17 and Debian's junit4 package, which this script installs when missing
# (apt-get, as root or through sudo). Tests that read files made by the Python side take them
# from EDGESMITH_TEST_MODEL, EDGESMITH_TEST_METADATA, EDGESMITH_TEST_BARE_MODEL,
# EDGESMITH_TEST_PIXELS and EDGESMITH_LOG_OUT (tests/demos/test_android_java.py sets them);
# without them those tests are skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
junit_jar=/usr/share/java/junit4.jar
hamcrest_jar=/usr/share/java/hamcrest-core.jar

install_junit() {
    echo "test.sh: installing Debian's junit4 package" >&2
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "test.sh: junit4 is missing; run: sudo apt-get install junit4" >&2; exit 2; }
        sudo="sudo"
    fi
    # Another apt run may hold the dpkg lock on a shared machine: wait for it rather than fail.
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq junit4 >/dev/null
}

command -v javac >/dev/null || { echo "test.sh: javac not found; install a JDK 17 (apt-get install openjdk-17-jdk-headless)" >&2; exit 2; }
[ -f "$junit_jar" ] || install_junit

build="${BUILD_DIR:-$here/build}"  # build/ is git-ignored
rm -rf "$build/main" "$build/test"
mkdir -p "$build/main" "$build/test"

# Main code at Java 8 API level: what Android's minSdk 24 supports without desugaring libraries.
javac -Xlint:all -Werror --release 8 -encoding UTF-8 -d "$build/main" \
    $(find "$here/src/main/java" -name '*.java')
javac --release 11 -encoding UTF-8 -cp "$build/main:$junit_jar:$hamcrest_jar" -d "$build/test" \
    $(find "$here/src/test/java" -name '*.java')

tests=$(cd "$build/test" && find . -name '*Test.class' ! -name '*$*' | sed 's|^\./||; s|\.class$||; s|/|.|g' | sort)
# shellcheck disable=SC2086
exec java -cp "$build/main:$build/test:$junit_jar:$hamcrest_jar" dev.edgesmith.core.RunTests $tests
