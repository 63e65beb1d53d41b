"""Red-teaming language models: GCG suffixes, automated attackers by attack family, refusal training data, and outside scanners."""
