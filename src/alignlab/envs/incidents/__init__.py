"""Environments from specification-gaming incidents beyond the AI Safety Gridworlds:
grasp-camera, tall-and-fall, test-rigging, engagement-recommender, biased-hiring (the
incidents are listed in Krakovna et al.'s specification-gaming examples, 2018-2020)."""
