"""The alignment review of a deployed AI system from its system card (docs/review.md; NIST AI 100-1, 2023)."""
