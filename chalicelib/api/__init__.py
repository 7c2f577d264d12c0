"""The HTTP edge: one blueprint per capability, one request helper, one error table, the published schemas."""
