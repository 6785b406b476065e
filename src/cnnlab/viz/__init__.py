"""Drawing: turns what arith/data/train/inspect return into figures. Nothing here computes results."""
