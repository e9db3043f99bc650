"""Array type aliases shared by core: one name for the float32 planes every stage passes around.

Convention: inside core, planes are channels-first (``(C, H, W)``, e.g. ab as ``(2, h, w)``); images are HWC only
at image input and output.
"""

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]
