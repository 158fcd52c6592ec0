"""Training facelab models on your own data: identity classifiers, landmark models (and more)."""
