"""Scoring service for model evaluation."""

__version__ = "0.1.0"
