"""Datasets: readers for real data and generators of synthetic tasks."""
