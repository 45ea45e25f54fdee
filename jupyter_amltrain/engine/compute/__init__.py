"""Compute pools of local nodes, the GPUs they hold, and the queue in front of them."""
