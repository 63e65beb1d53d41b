"""Problems with hidden intended objectives: RL environments and small decision games."""
