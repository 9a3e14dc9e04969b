import numpy as np

x = np.zeros(1)
while True:
    x += 1
