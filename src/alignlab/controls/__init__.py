"""Runtime controls around tool-using agents."""
