"""Weights in and out of other frameworks: pure conversions over one gate layout."""
