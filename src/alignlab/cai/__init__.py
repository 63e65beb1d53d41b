"""Constitutional AI: constitution files, the critique-and-revision loop, AI feedback and training on both."""
