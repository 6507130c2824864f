"""Helpers shared by test tiers (not fixtures: those live in the conftest files)."""
