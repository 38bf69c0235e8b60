"""Helpers shared by the test suites (private servers, fixtures' building blocks)."""
