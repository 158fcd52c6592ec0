"""Training facelab models on your own data."""
