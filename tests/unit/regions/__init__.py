"""Tests of stylex.regions."""
