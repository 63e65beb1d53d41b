"""Looking inside language models: residual-stream hooks, steering vectors, probes, sparse autoencoders."""
