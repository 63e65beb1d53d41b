"""Techniques that change the signal, the optimizer or the system so intent survives pressure."""
