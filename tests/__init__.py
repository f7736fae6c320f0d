"""The test suite (a package, so that worker processes re-import test modules by these names)."""
