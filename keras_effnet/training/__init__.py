"""keras-effnet."""
