"""Turning Lambda events into domain input, and results and errors into responses."""
