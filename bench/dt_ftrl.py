#!/usr/bin/env python3
"""datatable Ftrl worker for run_bench.py (run it with the peers' python, which has datatable).

  python dt_ftrl.py PREFIX --bits 24 --alpha A --beta B --l1 L1 --l2 L2 [--threads 1] [--double]

Reads PREFIX.X.npy (rows x F int32 feature ids, one column per CTR field) and PREFIX.y.npy
(bool labels), both written once by `stages.py prep --ctr-npy` from the same libsvm file
(datatable has no libsvm reader; the parse is not timed here).  Each column becomes an
int32 datatable column; Ftrl hashes every (column, value) pair into nbins = 2**bits bins and
treats it as a one-hot feature of value 1, i.e. the same 40 active features per row as the
libsvm file.  Prints one JSON line: import_s, load_s (np.load + Frame), fit_s, nthreads.
"""

import argparse
import json
import time

t_start = time.perf_counter()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("--bits", type=int, default=24)
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--l1", type=float, default=1.0)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--double", action="store_true")
    a = ap.parse_args()
    t0 = time.perf_counter()
    import datatable as dt
    import numpy as np
    from datatable.models import Ftrl

    if a.threads:
        dt.options.nthreads = a.threads
    t1 = time.perf_counter()
    X = np.load(a.prefix + ".X.npy")
    y = np.load(a.prefix + ".y.npy")
    frame = dt.Frame({f"c{j}": X[:, j] for j in range(X.shape[1])})
    yf = dt.Frame(y=y.astype(bool))
    del X
    t2 = time.perf_counter()
    m = Ftrl(alpha=a.alpha, beta=a.beta, lambda1=a.l1, lambda2=a.l2, nbins=1 << a.bits, nepochs=1,
             double_precision=a.double)
    m.fit(frame, yf)
    t3 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "fit_s": t3 - t2,
                      "nthreads": dt.options.nthreads, "version": dt.__version__,
                      "rows": frame.nrows, "cols": frame.ncols}))


if __name__ == "__main__":
    main()
