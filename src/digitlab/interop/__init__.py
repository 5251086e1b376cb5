"""Other tools' ways in: ONNX export for other runtimes, a scikit-learn estimator."""
