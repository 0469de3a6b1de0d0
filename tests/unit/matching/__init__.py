"""Tests of stylex.matching."""
