"""What the web-app tests share: reading a figure's arrays back, the surface page's control values
and its view, a free local port."""

from __future__ import annotations

import base64
import socket

import numpy as np


def decode(spec: dict) -> np.ndarray:
    a = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]).newbyteorder("<"))
    if "shape" in spec:
        a = a.reshape([int(s) for s in spec["shape"].split(",")])
    return a


def arr(v) -> np.ndarray:
    """A figure array, whether a typed-array spec or a plain sequence."""
    return decode(v) if isinstance(v, dict) else np.asarray(v, dtype=float)


SURF = dict(w_range=[-2, 12], b_range=[-8, 2], res=32, T=30, x0=0.5, target=0.7, act="sigmoid",
            log_flags=["log"])


RUN = dict(w0=4.0, b0=-3.6, lr=1.5, n=40, clip="norm", tau_log=0.0, p=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def view(surface=True, paths=True, diag=True, **change):
    """The surface page's :func:`update_view` on :data:`SURF` and :data:`RUN` with ``change``."""
    from clipviz.web.pages import surface as page

    return page.update_view({**SURF, **RUN, **change}, surface=surface, paths=paths, diag=diag)
