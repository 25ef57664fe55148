"""`keras-effnet export` from a checkout (keras_effnet/commands/): kept for old invocations."""

import os
import sys

from keras_effnet import commands

if __name__ == "__main__":
    commands.run_job("export", sys.argv[1:], prog_name=os.path.basename(__file__))
