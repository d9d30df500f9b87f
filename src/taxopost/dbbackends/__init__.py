"""Database backends tuned for taxopost."""
