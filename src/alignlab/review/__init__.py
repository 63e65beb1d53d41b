"""The alignment review of a deployed system."""
