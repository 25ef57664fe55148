"""`python -m keras_effnet <job> [flags]`: the `keras-effnet` command without its script."""

import sys

from keras_effnet.commands import main

if __name__ == "__main__":
    sys.exit(main())
