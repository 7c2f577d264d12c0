"""The digital twin: expected PV output (physics), local climate, and judging readings against it."""
