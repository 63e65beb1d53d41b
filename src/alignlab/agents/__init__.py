"""Optimizers that put pressure on the specified objective (planners, RL agents)."""
