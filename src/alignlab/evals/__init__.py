"""Behavioural evaluations that run against any model."""
