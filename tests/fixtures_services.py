"""Session fixtures that start real local services for the tests (loopback only)."""
