"""Language-model loading, generation and gold scorers."""
