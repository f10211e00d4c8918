plugins {
    id("com.android.application")
}

android {
    namespace = "dev.edgesmith.demo"
    compileSdk = 34

    defaultConfig {
        applicationId = "dev.edgesmith.demo"
        minSdk = 24
        targetSdk = 34
        versionCode = 1
        versionName = "0.1.0"
    }

    buildFeatures {
        buildConfig = true
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_1_8
        targetCompatibility = JavaVersion.VERSION_1_8
    }

    androidResources {
        noCompress += "tflite" // models in assets stay memory-mappable
    }
}

dependencies {
    implementation(project(":core"))

    implementation("androidx.appcompat:appcompat:1.7.0")

    val camerax = "1.3.4"
    implementation("androidx.camera:camera-core:$camerax")
    implementation("androidx.camera:camera-camera2:$camerax")
    implementation("androidx.camera:camera-lifecycle:$camerax")
    implementation("androidx.camera:camera-view:$camerax")

    val litert = "1.4.0"
    implementation("com.google.ai.edge.litert:litert:$litert")          // Interpreter, XNNPACK, NNAPI delegate
    implementation("com.google.ai.edge.litert:litert-gpu:$litert")      // GPU delegate
    implementation("com.google.ai.edge.litert:litert-gpu-api:$litert")
}
