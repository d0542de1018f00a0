"""Reference servers measured side by side with the service (see bench/README.md)."""
