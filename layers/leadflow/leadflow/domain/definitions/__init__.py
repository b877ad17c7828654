"""What an operator defines in the workspace: forms, consent purposes, scoring models, sequences,
hand-off rules, tracking, referrers, retention and the theme, as plain dataclasses that check
their own invariants.

The domain works on these types; ``leadflow.config`` reads the workspace's YAML into them (it
imports this package, never the other way round)."""
