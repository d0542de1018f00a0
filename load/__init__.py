"""Load test of the deployed scoring service: ``python -m load.run --help``."""
