"""Enrol embeddings into a gallery from a separate process (kill -9 and concurrency tests).

    python tests/gallery_worker.py URL VECTORS.npy PREFIX FIRST COUNT [--shared] [--ack]

Enrols people PREFIX<i> for i in FIRST..FIRST+COUNT-1, one transaction per embedding
(row i of VECTORS.npy, 4 embeddings per person), printing "committed <name> <k>" after
each commit; with --shared also enrols the same 2 embeddings as "shared" (every worker
races to store the same content).  With --ack the worker waits for a line on stdin
after each report before starting the next transaction, so it is never more than one
transaction ahead of what its parent has read.
"""

from __future__ import annotations

import sys

import numpy as np

from facelab.gallery import Gallery
from facelab.types import Embedding

PER_PERSON = 4


def main() -> None:
    url, npy, prefix, first, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    vecs = np.load(npy)
    ack = "--ack" in sys.argv
    with Gallery(url) as g:
        if "--shared" in sys.argv:
            g.enroll_embeddings("shared", [Embedding(vecs[0], "dlib"), Embedding(vecs[1], "dlib")])
            print("committed shared 2", flush=True)
        for i in range(first, first + count):
            name = f"{prefix}{i}"
            for k in range(PER_PERSON):
                v = vecs[(i * PER_PERSON + k) % len(vecs)] + np.float32((i + 1) * 1e-3)  # distinct content per person (and from "shared")
                g.enroll_embeddings(name, [Embedding(v, "dlib")])
                print(f"committed {name} {k + 1}", flush=True)
                if ack and not sys.stdin.readline():
                    return


if __name__ == "__main__":
    main()
