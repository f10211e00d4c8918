// The app's logic with no Android dependency: metadata, preprocessing, statistics, energy, logs.
// Here it is also built and tested without Gradle: see test.sh.
plugins {
    `java-library`
}

java {
    // Java 8 API level: what minSdk 24 offers without desugaring libraries.
    sourceCompatibility = JavaVersion.VERSION_1_8
    targetCompatibility = JavaVersion.VERSION_1_8
}

tasks.named<JavaCompile>("compileTestJava") {
    sourceCompatibility = "11"
    targetCompatibility = "11"
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}
