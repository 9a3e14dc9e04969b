import numpy as np
import pandas as pd

values = pd.Series(np.array(input().split(), dtype=np.int64))
print(int(values.sum()))
