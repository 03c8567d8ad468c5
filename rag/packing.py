"""Many short strings (chunk ids, terms) stored as one numpy byte array: no pickle, read in one decode.

A numpy array of ``str`` holds every string at the width of the longest, four bytes per character (a million
chunk ids: about 150 MB, and seconds to turn back into Python strings); joined with a separator that none of
them holds, they take their UTF-8 size and split back in a fraction of a second.

>>> unpack_strings(pack_strings(["a", "b"]))
['a', 'b']
"""

from __future__ import annotations

import numpy as np

SEPARATOR = "\n"


def pack_strings(strings: list[str]) -> np.ndarray:
    joined = SEPARATOR.join(strings)
    if joined.count(SEPARATOR) != max(len(strings) - 1, 0):
        raise ValueError("a string to pack holds a line break")
    return np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)


def unpack_strings(array: np.ndarray) -> list[str]:
    return array.tobytes().decode("utf-8").split(SEPARATOR) if len(array) else []
