"""Use cases: one function each, ports passed in."""
