import numpy as np
def main(:
    print(np.pi
