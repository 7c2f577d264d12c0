"""Issuance: accepted Wh as slices, pooled FIFO into serial-numbered D-RECs of 1000 Wh."""
