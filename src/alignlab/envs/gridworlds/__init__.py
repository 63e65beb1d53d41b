"""The AI Safety Gridworlds (Leike et al. 2017, arXiv:1711.09883) as alignlab environments:
one module per environment, each registered as `alignlab/<name>-v0` with its native vector env."""
