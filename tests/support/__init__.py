"""Test doubles shared by the test suites (servers that stand in for external engines)."""
