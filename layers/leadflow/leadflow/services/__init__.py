"""Use cases: each wires domain rules to ports."""
