"""Helpers shared by test modules. Test modules import from here (or from a conftest), never from
another test module: a test file can then be moved, renamed or deleted without breaking others."""
