"""Small offline vision tasks (sklearn's 8x8 digits) shared by the debate, weak-to-strong and robustness work."""
