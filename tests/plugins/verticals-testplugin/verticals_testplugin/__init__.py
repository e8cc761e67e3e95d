"""A minimal third-party domain: a linear scorer over numbers, with its own table."""
