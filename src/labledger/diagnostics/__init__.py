"""Shipped physics models: langmuir, interferometer, rf, coils."""
