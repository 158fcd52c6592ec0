"""Training facelab models on your own data: landmarks, identity classifiers (k-fold CV, grid search, open-set threshold)."""
