"""Datasets the classifiers are trained and evaluated on."""
