import sys

import numpy as np

line = sys.stdin.readline()
sys.stdout.write("".join(np.array(list(line))))
