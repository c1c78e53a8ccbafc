"""The test suite; `faults` holds the helpers that cause real faults."""
