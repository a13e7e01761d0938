"""Scoring engines behind one interface (`base.ScoringBackend`)."""
