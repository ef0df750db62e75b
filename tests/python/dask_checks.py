"""Helpers of the Dask tests (test_dask*.py): a local cluster, the three
schedulers, bit comparison. Imported after ``pytest.importorskip("dask")``."""

import contextlib

import numpy as np


@contextlib.contextmanager
def local_client():
    """Two worker processes of one thread each; no dashboard, no network
    beyond the loopback."""
    import distributed

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        host="127.0.0.1",
    ) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


def on_all(client, *xs):
    """Each collection computed on the synchronous, threaded and distributed
    schedulers: [(sync...), (threads...), (distributed...)]."""
    import dask
    import dask.array as da

    assert all(isinstance(x, da.Array) for x in xs), [type(x) for x in xs]
    out = [dask.compute(*xs, scheduler="sync"), dask.compute(*xs, scheduler="threads")]
    out.append(tuple(client.compute(list(xs), sync=True)))
    return out


def bits(x):
    a = np.asarray(x)
    return a.dtype.str, a.shape, a.tobytes()
