"""Training facelab models on your own data (landmark CNN, identity classifiers: k-fold CV, grid search, open-set threshold)."""
