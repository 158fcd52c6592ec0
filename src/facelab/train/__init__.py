"""Training on the user's own data: identity classifiers (k-fold CV, grid search, open-set threshold)."""
