"""Red-teaming language models: GCG suffixes, automated attackers by family, refusal training, outside scanners."""
