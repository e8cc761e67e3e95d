"""Shared infrastructure of verticals. Knows no domain."""
