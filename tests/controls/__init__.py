"""Tests of the agent controls (guard, sandbox, audit log, rollback, approval)."""
