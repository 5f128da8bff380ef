"""One module per workflow rule: each main() takes plain paths and parameters."""
