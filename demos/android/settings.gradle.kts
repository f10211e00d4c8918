// edgesmith Android demo: the camera classifier and benchmark app (app/) over a plain-Java core (core/).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google() // LiteRT (com.google.ai.edge.litert) and CameraX are on Google's Maven only
        mavenCentral()
    }
}

rootProject.name = "edgesmith-android"
include(":core", ":app")
