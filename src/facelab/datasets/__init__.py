"""Datasets: build clean face datasets from raw photos, and augment them."""
