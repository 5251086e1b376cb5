"""Scoring trained models on any data: accuracy, calibration and doubt, robustness.

Shared by the command line, the benchmarks, the reports and the web page, so each
figure is computed in one place.
"""
