"""skmetric benchmarks: every method on the same folds, with kNN classifiers."""
