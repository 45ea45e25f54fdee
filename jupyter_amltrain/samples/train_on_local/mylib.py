import numpy as np


def get_alphas():
    """Alphas from 0.0 to 0.95 in steps of 0.05."""
    return np.arange(0.0, 1.0, 0.05)
