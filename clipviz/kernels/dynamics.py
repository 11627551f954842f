"""Kernels for the dynamics of the one-unit map and the n-unit network.

One unit (the paper's equation (14), no input):

    F(x) = w * sigma(x) + b,     G(x, b) = F(x) - x,     G_x = w sigma'(x) - 1,  G_b = 1

Fixed points are the zeros of G; folds (limit points) add G_x = 0, i.e.
F'(x) = 1; period doubling adds F'(x) = -1.  Period-2 points satisfy
F(F(x)) = x; since

    F(F(x)) - x = (F(x) - x) * (1 + w * sigma[x, F(x)])

with sigma[p, q] = (sigma(q) - sigma(p)) / (q - p) the divided difference,
the period-2 branch is the zero set of M(x, b) = 1 + w sigma[x, F(x)] (the
period-1 factor divided out exactly, so the branch crosses the fixed-point
branch at the period-doubling points without a branch point).  The divided
difference is evaluated without cancellation:

    sigmoid: sigma[p, q] = sigma(-p) sigma(q) (1 - exp(-h)) / h,   h = q - p
    tanh:    sigma[p, q] = sinh(h) / (h cosh p cosh q)

Activation codes: those of :mod:`clipviz.kernels.activations` (0 = logistic
sigmoid, 1 = tanh; the n-unit kernels add 2 = identity).

Grid kernels are parallel over rows and keep the row's independent points in
the innermost loop.  Two things keep a loop from vectorising in Numba: a libm
call (``math.exp``), and Numba's ZeroDivisionError check on every float
division (error_model="python", the default).  The grid kernels use
error_model="numpy" (no division there can be by zero: the divisors are
1 + exp(.) >= 1) and the activations of :mod:`clipviz.kernels.activations`
(arithmetic only), so their loops compile to AVX2/AVX-512 code.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .activations import (
    IDENTITY,
    SIGMOID,
    act_d2,
    dmax,
    sigma_direct,
    sigmoid_d2,
    sigmoid_direct,
    sigmoid_libm,
    tanh,
    tanh_d2,
)

# ---------------------------------------------------------------------------
# scalar helpers
# ---------------------------------------------------------------------------


@njit(cache=True)
def sigma_prime_inverse(target: float, act: int) -> float:
    """The c >= 0 with sigma'(c) = target, for 0 < target <= max sigma'.

    sigma' is even and strictly decreasing on [0, inf) for both activations;
    safeguarded Newton inside a bracket [0, hi] where sigma'(hi) < target
    (sigmoid' < exp(-x), tanh' < 4 exp(-2x)).
    """
    if target >= dmax(act):
        return 0.0
    if act == SIGMOID:
        hi = -math.log(target) + 1.0
    else:
        hi = 0.5 * math.log(4.0 / target) + 1.0
    lo = 0.0
    x = 0.5 * (lo + hi)
    for _ in range(200):
        _s, d1, d2 = act_d2(x, act)
        f = d1 - target
        if f > 0.0:
            lo = x
        else:
            hi = x
        xn = x - f / d2 if d2 != 0.0 else 0.5 * (lo + hi)
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= 1e-16 * (1.0 + abs(x)) or hi - lo <= 4e-16 * (1.0 + abs(x)):
            return xn
        x = xn
    return x


@njit(inline="always", cache=True)
def _g(x: float, w: float, b: float, act: int):
    s, d1, _d2 = act_d2(x, act)
    return w * s + b - x, w * d1 - 1.0


@njit(cache=True)
def _solve_g(lo: float, hi: float, glo: float, w: float, b: float, act: int) -> float:
    """The zero of G(., b) in [lo, hi], where G changes sign (G(lo) = glo)."""
    x = 0.5 * (lo + hi)
    pos_lo = glo > 0.0
    for _ in range(300):
        g, gx = _g(x, w, b, act)
        if g == 0.0:
            return x
        if (g > 0.0) == pos_lo:
            lo = x
        else:
            hi = x
        xn = x - g / gx if gx != 0.0 else 0.5 * (lo + hi)
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= 2e-16 * (1.0 + abs(x)) or hi - lo <= 4e-16 * (1.0 + abs(x)):
            return xn
        x = xn
    return x


@njit(cache=True)
def fixed_points(w: float, b: float, act: int, out: np.ndarray) -> int:
    """All zeros of G(x) = w sigma(x) + b - x, sorted, written to out[:n]; returns n (1..3).

    G is monotone between the critical points -c, c of G (w sigma'(c) = 1,
    present only when w * max sigma' > 1), and G > 0 / G < 0 beyond the
    bounds of w sigma + b, so each monotone piece holds at most one zero,
    found by safeguarded Newton.  A critical point where |G| is at rounding
    level (an exact fold) counts as a (double) zero once.
    """
    if act == SIGMOID:
        lo = b + min(w, 0.0) - 1.0
        hi = b + max(w, 0.0) + 1.0
    else:
        lo = b - abs(w) - 1.0
        hi = b + abs(w) + 1.0
    cuts = np.empty(4)
    nc = 0
    cuts[nc] = lo
    nc += 1
    if w * dmax(act) > 1.0:
        c = sigma_prime_inverse(1.0 / w, act)
        if lo < -c < hi:
            cuts[nc] = -c
            nc += 1
        if lo < c < hi and c > 0.0:
            cuts[nc] = c
            nc += 1
    cuts[nc] = hi
    nc += 1
    tol = 1e-13 * (1.0 + abs(b) + abs(w))
    n = 0
    cand = np.empty(6)
    for i in range(nc - 1):
        a = cuts[i]
        z = cuts[i + 1]
        ga, _ = _g(a, w, b, act)
        gz, _ = _g(z, w, b, act)
        if i > 0 and abs(ga) <= tol:
            cand[n] = a
            n += 1
            continue
        if i + 1 < nc - 1 and abs(gz) <= tol:
            continue  # recorded as the next piece's left end
        if (ga > 0.0) != (gz > 0.0):
            cand[n] = _solve_g(a, z, ga, w, b, act)
            n += 1
    # sorted by construction; drop numerical duplicates at a fold
    m = 0
    for i in range(n):
        if m > 0 and abs(cand[i] - out[m - 1]) <= 1e-9 * (1.0 + abs(cand[i])):
            continue
        if m < out.shape[0]:
            out[m] = cand[i]
            m += 1
    return m


@njit(cache=True)
def refine_special(w: float, x: float, act: int, m: float) -> tuple:
    """Newton on the 2x2 system G(x, b) = 0, w sigma'(x) - m = 0 for (x, b).

    m = 1: fold (limit point); m = -1: period doubling.  The Jacobian is
    [[w sigma' - 1, 1], [w sigma'', 0]], so each Newton step is
    dx = -(w sigma' - m) / (w sigma''), db = -G - (w sigma' - 1) dx.
    Returns (x, b, converged).
    """
    s, d1, d2 = act_d2(x, act)
    b = x - w * s
    ok = False
    for _ in range(60):
        s, d1, d2 = act_d2(x, act)
        r1 = w * s + b - x
        r2 = w * d1 - m
        if w * d2 == 0.0:
            break
        dx = -r2 / (w * d2)
        db = -r1 - (w * d1 - 1.0) * dx
        x += dx
        b += db
        if abs(dx) <= 1e-15 * (1.0 + abs(x)) and abs(db) <= 1e-15 * (1.0 + abs(b)):
            ok = True
            break
    # final b consistent with the final x (G = 0 to rounding)
    s, d1, d2 = act_d2(x, act)
    b = x - w * s
    return x, b, ok


# ---------------------------------------------------------------------------
# period-2 factor
# ---------------------------------------------------------------------------


@njit(cache=True)
def _log_cosh(x: float) -> float:
    a = abs(x)
    return a + math.log1p(math.exp(-2.0 * a)) - math.log(2.0)


@njit(cache=True)
def divided_difference(p: float, q: float, act: int) -> float:
    """sigma[p, q] = (sigma(q) - sigma(p)) / (q - p), sigma'(p) when q = p, without cancellation."""
    h = q - p
    if act == SIGMOID:
        sp = sigmoid_libm(-p) if p > -700.0 else 1.0  # sigma(-p)
        sq = sigmoid_libm(q) if q > -700.0 else 0.0
        if abs(h) < 1e-8:
            phi = 1.0 - 0.5 * h
        elif h > -700.0:
            phi = -math.expm1(-h) / h
        else:
            return (sq - (1.0 - sp)) / h
        return sp * sq * phi
    # tanh
    ah = abs(h)
    lc = _log_cosh(p) + _log_cosh(q)
    if ah < 1e-8:
        return math.exp(-lc)
    if ah < 30.0:
        return math.sinh(ah) / ah * math.exp(-lc)
    return math.exp(ah - math.log(2.0 * ah) - lc)


@njit(cache=True)
def _m2(x: float, b: float, w: float, act: int) -> float:
    s, _d1, _d2 = act_d2(x, act)
    q = w * s + b
    return 1.0 + w * divided_difference(x, q, act)


@njit(cache=True)
def _equation(eq: int, x: float, b: float, w: float, act: int) -> tuple:
    """(E, E_x, E_b): eq 0 is G (exact derivatives), eq 1 is M (central differences)."""
    if eq == 0:
        s, d1, _d2 = act_d2(x, act)
        return w * s + b - x, w * d1 - 1.0, 1.0
    e = _m2(x, b, w, act)
    hx = 1e-6 * (1.0 + abs(x))
    hb = 1e-6 * (1.0 + abs(b))
    ex = (_m2(x + hx, b, w, act) - _m2(x - hx, b, w, act)) / (2.0 * hx)
    eb = (_m2(x, b + hb, w, act) - _m2(x, b - hb, w, act)) / (2.0 * hb)
    return e, ex, eb


@njit(cache=True)
def period2_point(w: float, b: float, xstar: float, act: int) -> float:
    """A period-2 point p > x* at b, by bisection on M(., b) over [x*, hi].

    Valid when the fixed point x* is past period doubling (1 + w sigma'(x*) < 0):
    then M(x*) < 0 and M > 0 far away (sigma[p, q] -> 0).  Returns NaN if no
    sign change is found.
    """
    lo = xstar
    mlo = _m2(lo, b, w, act)
    if not mlo < 0.0:
        return np.nan
    step = 1.0
    hi = lo + step
    mhi = _m2(hi, b, w, act)
    k = 0
    while mhi < 0.0 and k < 60:
        lo = hi
        step *= 2.0
        hi = lo + step
        mhi = _m2(hi, b, w, act)
        k += 1
    if mhi < 0.0:
        return np.nan
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if _m2(mid, b, w, act) < 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# ---------------------------------------------------------------------------
# pseudo-arclength continuation
# ---------------------------------------------------------------------------


@njit(cache=True)
def _solve_x_at_b(eq: int, x: float, b: float, w: float, act: int) -> float:
    for _ in range(60):
        e, ex, _eb = _equation(eq, x, b, w, act)
        if ex == 0.0:
            break
        dx = -e / ex
        x += dx
        if abs(dx) <= 1e-15 * (1.0 + abs(x)):
            break
    return x


@njit(cache=True)
def continue_curve(eq: int, w: float, act: int, x0: float, b0: float, orient_x: float,
                   orient_b: float, b_min: float, b_max: float, ds_max: float,
                   max_angle: float, out_x: np.ndarray, out_b: np.ndarray,
                   close_loop: bool) -> tuple:
    """Pseudo-arclength continuation of the curve E(x, b) = 0 from (x0, b0).

    Predictor: a step ds along the unit tangent t = (-E_b, E_x)/|.|, oriented
    like (orient_x, orient_b) at the start and like the previous tangent after.
    Corrector: Newton on [E(x, b); t . ((x, b) - predicted)] = 0.  The step
    grows (x1.5, up to ds_max) after fast convergence and halves on failure or
    when the tangent turns by more than max_angle.  Stops when b leaves
    [b_min, b_max] (the last point is put on the boundary), when the curve
    returns to its start (close_loop), when out_x is full, or when the step
    underflows.  Returns (n_points, status): status 0 = left the window,
    1 = closed loop, 2 = buffer full, 3 = step underflow.
    """
    cap = out_x.shape[0]
    x = x0
    b = b0
    e, ex, eb = _equation(eq, x, b, w, act)
    # The natural tangent (-E_b, E_x) keeps det[[E_x, E_b], [t_x, t_b]] = |grad E| > 0, so
    # its orientation is consistent along a regular curve: fix the sign once, never flip
    # (flipping by a dot product would let a large step jump across a sharp fold).
    sgn = 1.0 if (-eb * orient_x + ex * orient_b) >= 0.0 else -1.0
    tx = -eb * sgn
    tb = ex * sgn
    nrm = math.hypot(tx, tb)
    tx /= nrm
    tb /= nrm
    out_x[0] = x
    out_b[0] = b
    n = 1
    ds = ds_max * 0.1
    ds_min = ds_max * 1e-9
    cos_max = math.cos(max_angle)
    travelled = 0.0
    while n < cap:
        xp = x + ds * tx
        bp = b + ds * tb
        xi = xp
        bi = bp
        ok = False
        its = 0
        for it in range(12):
            e, ex, eb = _equation(eq, xi, bi, w, act)
            r2 = tx * (xi - xp) + tb * (bi - bp)
            det = ex * tb - eb * tx
            if det == 0.0 or not math.isfinite(det):
                break
            dx = (-e * tb + r2 * eb) / det
            db = (-ex * r2 + tx * e) / det
            xi += dx
            bi += db
            its = it + 1
            if abs(dx) + abs(db) <= 1e-13 * (1.0 + abs(xi) + abs(bi)):
                ok = True
                break
        if ok:
            e, ex, eb = _equation(eq, xi, bi, w, act)
            # converged, on the curve, and not pulled far from the predictor (another part
            # of the curve)
            ok = abs(e) <= 1e-10 and math.hypot(xi - xp, bi - bp) <= 0.5 * ds
        if not ok:
            ds *= 0.5
            if ds < ds_min:
                return n, 3
            continue
        nx = -eb * sgn
        nb = ex * sgn
        nrm = math.hypot(nx, nb)
        nx /= nrm
        nb /= nrm
        c = nx * tx + nb * tb
        if c < cos_max:
            if ds > ds_min * 16.0:
                ds *= 0.5
                continue
            if c <= 0.0:
                return n, 3
        step = math.hypot(xi - x, bi - b)
        travelled += step
        x = xi
        b = bi
        tx = nx
        tb = nb
        if b < b_min or b > b_max:
            bb = b_min if b < b_min else b_max
            # back onto the boundary: interpolate then solve for x at b = bb
            px = out_x[n - 1]
            pb = out_b[n - 1]
            f = (bb - pb) / (b - pb) if b != pb else 1.0
            xg = px + f * (x - px)
            out_x[n] = _solve_x_at_b(eq, xg, bb, w, act)
            out_b[n] = bb
            return n + 1, 0
        out_x[n] = x
        out_b[n] = b
        n += 1
        if close_loop and travelled > 4.0 * ds_max and n < cap:
            if math.hypot(x - x0, b - b0) <= 1.5 * ds:
                out_x[n] = x0
                out_b[n] = b0
                return n + 1, 1
        if its <= 3:
            ds = min(ds * 1.5, ds_max)
    return n, 2


# ---------------------------------------------------------------------------
# grids: basins, orbits, sensitivity
# ---------------------------------------------------------------------------


@njit(cache=True)
def attractors(w: float, bs: np.ndarray, act: int, att_x: np.ndarray,
               att_lab: np.ndarray, boundary: np.ndarray) -> None:
    """Attractors of F at every b, for basin labelling.

    att_x[j, :] holds up to 2 attractor points at b = bs[j] (NaN where
    none), att_lab[j, :] their labels: stable fixed points are labelled 1 if
    they lie on the upper branch (x > 0, only possible with folds present)
    and 0 otherwise; a period-2 orbit (negative w, fixed point past period
    doubling) puts both its points in with label 0.  boundary[j] is the
    unstable fixed point between two stable ones (the basin boundary), NaN
    where there is only one attractor.
    """
    roots = np.empty(3)
    folds = w * dmax(act) > 1.0
    for j in range(bs.shape[0]):
        att_x[j, 0] = np.nan
        att_x[j, 1] = np.nan
        att_lab[j, 0] = -1
        att_lab[j, 1] = -1
        n = fixed_points(w, bs[j], act, roots)
        boundary[j] = np.nan
        k = 0
        for i in range(n):
            _s, d1, _d2 = act_d2(roots[i], act)
            if abs(w * d1) < 1.0 and k < 2:
                att_x[j, k] = roots[i]
                att_lab[j, k] = 1 if (folds and roots[i] > 0.0) else 0
                k += 1
        if n == 3 and k == 2:
            boundary[j] = roots[1]
        if k == 0 and w < 0.0 and n == 1:
            p = period2_point(w, bs[j], roots[0], act)
            if math.isfinite(p):
                s, _d1, _d2 = act_d2(p, act)
                att_x[j, 0] = p
                att_x[j, 1] = w * s + bs[j]
                att_lab[j, 0] = 0
                att_lab[j, 1] = 0


BLOCK = 16  # steps between checks for bitwise-converged points in basins_grid


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def _steps_sigmoid(xa: np.ndarray, ba: np.ndarray, na: int, w: float, nsteps: int) -> None:
    for _ in range(nsteps):
        for a in range(na):
            xa[a] = w * sigmoid_direct(xa[a]) + ba[a]


@njit(inline="always", cache=True, fastmath={"contract"}, error_model="numpy")
def _steps_tanh(xa: np.ndarray, ba: np.ndarray, na: int, w: float, nsteps: int) -> None:
    for _ in range(nsteps):
        for a in range(na):
            xa[a] = w * tanh(xa[a]) + ba[a]


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"}, error_model="numpy")
def basins_grid(w: float, bs: np.ndarray, x0s: np.ndarray, steps: int, act: int,
                att_x: np.ndarray, att_lab: np.ndarray, tol: float,
                out: np.ndarray, retire: bool, xT: np.ndarray) -> None:
    """out[i, j] = label of the attractor x_T reaches from x_0 = x0s[i] at b = bs[j].

    -1 where x_T is farther than tol from every attractor at that b.  If xT
    has the shape of out, x_T is stored there too.

    Every BLOCK steps, points whose orbit has become exactly periodic with
    period 1 or 2 (F(F(x)) == x bitwise) are retired: their x_T follows from
    the parity of the steps left, so x_T is what full iteration gives.  The
    map is monotone, so every orbit converges to a fixed point or (w < 0) a
    2-cycle, and only points near a bifurcation run all T steps.  The live
    points are kept packed (contiguous x and b) so the inner loop vectorises.
    """
    nb = bs.shape[0]
    for i in prange(x0s.shape[0]):
        xf = np.empty(nb)
        xa = np.full(nb, x0s[i])
        ba = bs.copy()
        ia = np.arange(nb)
        na = nb
        done = 0
        if not retire:  # plain iteration (reference / benchmark of the raw loop)
            if act == SIGMOID:
                _steps_sigmoid(xa, ba, na, w, steps)
            else:
                _steps_tanh(xa, ba, na, w, steps)
            done = steps
        while steps - done >= 2 and na > 0:
            blk = min(BLOCK, steps - done)
            if act == SIGMOID:
                _steps_sigmoid(xa, ba, na, w, blk - 2)
            else:
                _steps_tanh(xa, ba, na, w, blk - 2)
            done += blk
            left = steps - done
            m = 0
            for a in range(na):  # the block's last two steps, retiring exact period <= 2
                x0 = xa[a]
                y1 = w * sigma_direct(x0, act) + ba[a]
                y2 = w * sigma_direct(y1, act) + ba[a]
                if y2 == x0:
                    xf[ia[a]] = x0 if left % 2 == 0 else y1
                else:
                    xa[m] = y2
                    ba[m] = ba[a]
                    ia[m] = ia[a]
                    m += 1
            na = m
        if steps - done == 1:
            if act == SIGMOID:
                _steps_sigmoid(xa, ba, na, w, 1)
            else:
                _steps_tanh(xa, ba, na, w, 1)
        for a in range(na):
            xf[ia[a]] = xa[a]
        if xT.shape[0] == out.shape[0] and xT.shape[1] == nb:
            for j in range(nb):
                xT[i, j] = xf[j]
        for j in range(nb):
            lab = -1
            best = tol
            for k in range(2):
                d = abs(xf[j] - att_x[j, k])
                if d <= best:  # NaN compares False
                    best = d
                    lab = att_lab[j, k]
            out[i, j] = lab


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"}, error_model="numpy")
def orbits(w: float, bs: np.ndarray, x0s: np.ndarray, transient: int, keep: int, act: int,
           out: np.ndarray) -> None:
    """out[i, j, :] = x_{transient+1} .. x_{transient+keep} from x0s[i] at b = bs[j]."""
    nb = bs.shape[0]
    for i in prange(x0s.shape[0]):
        x = np.full(nb, x0s[i])
        if act == SIGMOID:
            _steps_sigmoid(x, bs, nb, w, transient)
        else:
            _steps_tanh(x, bs, nb, w, transient)
        for t in range(keep):
            for j in range(nb):
                x[j] = w * sigma_direct(x[j], act) + bs[j]
                out[i, j, t] = x[j]


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"}, error_model="numpy")
def sensitivity_grid(w: float, bs: np.ndarray, x0s: np.ndarray, steps: int, act: int,
                     xT: np.ndarray, dxb: np.ndarray, dx0: np.ndarray) -> None:
    """x_T, dx_T/db and dx_T/dx_0 by forward mode over the grid x0s x bs.

        dx_t/db  = 1 + w sigma'(x_{t-1}) dx_{t-1}/db,   dx_0/db = 0
        dx_t/dx0 = w sigma'(x_{t-1}) dx_{t-1}/dx0,       dx_0/dx0 = 1
    """
    nb = bs.shape[0]
    for i in prange(x0s.shape[0]):
        x = np.full(nb, x0s[i])
        gb = np.zeros(nb)
        g0 = np.ones(nb)
        if act == SIGMOID:
            for _ in range(steps):
                for j in range(nb):
                    s, d1, _d2 = sigmoid_d2(x[j])
                    wd = w * d1
                    gb[j] = 1.0 + wd * gb[j]
                    g0[j] = wd * g0[j]
                    x[j] = w * s + bs[j]
        else:
            for _ in range(steps):
                for j in range(nb):
                    s, d1, _d2 = tanh_d2(x[j])
                    wd = w * d1
                    gb[j] = 1.0 + wd * gb[j]
                    g0[j] = wd * g0[j]
                    x[j] = w * s + bs[j]
        for j in range(nb):
            xT[i, j] = x[j]
            dxb[i, j] = gb[j]
            dx0[i, j] = g0[j]


@njit(cache=True, fastmath={"contract"})
def driven(w: float, b: float, u: np.ndarray, xa0: float, xb0: float, act: int,
           xa: np.ndarray, xb: np.ndarray, dxa: np.ndarray) -> None:
    """Two trajectories of x_t = w sigma(x_{t-1}) + b + u_t and dx_t/dx_0 along the first."""
    xa[0] = xa0
    xb[0] = xb0
    dxa[0] = 1.0
    for t in range(u.shape[0]):
        s, d1, _d2 = act_d2(xa[t], act)
        dxa[t + 1] = w * d1 * dxa[t]
        xa[t + 1] = w * s + b + u[t]
        s, _d1, _d2 = act_d2(xb[t], act)
        xb[t + 1] = w * s + b + u[t]


# ---------------------------------------------------------------------------
# n units: x_t = W_rec sigma(x_{t-1}) + W_in u_t + b   (equation (2))
# ---------------------------------------------------------------------------


@njit(cache=True)
def _act_vec(x: np.ndarray, act: int) -> tuple:
    n = x.shape[0]
    s = np.empty(n)
    d = np.empty(n)
    for i in range(n):
        if act == IDENTITY:
            s[i] = x[i]
            d[i] = 1.0
        else:
            si, di, _ = act_d2(x[i], act)
            s[i] = si
            d[i] = di
    return s, d


@njit(cache=True)
def n_unit_states(W: np.ndarray, Win: np.ndarray, b: np.ndarray, U: np.ndarray,
                  x0: np.ndarray, act: int) -> tuple:
    """States x_0..x_T (rows) and sigma'(x_t) of equation (2); U holds u_1..u_T as rows."""
    T = U.shape[0]
    n = x0.shape[0]
    X = np.empty((T + 1, n))
    D = np.empty((T + 1, n))
    X[0] = x0
    for t in range(T):
        s, d = _act_vec(X[t], act)
        D[t] = d
        X[t + 1] = W @ s + Win @ U[t] + b
    _s, d = _act_vec(X[T], act)
    D[T] = d
    return X, D


@njit(cache=True)
def _top_singular(P: np.ndarray, u: np.ndarray, maxit: int) -> float:
    """Largest singular value of P by power iteration on P P^T, warm-started from u (updated).

    ||P^T u|| for a unit u rises monotonically to sigma_max; iterate until it
    stops changing at rounding level.  Products P_l = P_{l-1} A_l keep their
    leading left singular vector nearly fixed from one l to the next, so the
    warm start makes this a few matrix-vector products per l.
    """
    prev = -1.0
    s2 = 0.0
    for _ in range(maxit):
        v = P.T @ u
        s2 = np.dot(v, v)
        nu = P @ v
        m = math.sqrt(np.dot(nu, nu))
        if m == 0.0:
            return 0.0
        u[:] = nu / m
        if abs(s2 - prev) <= 1e-15 * s2:
            break
        prev = s2
    return math.sqrt(s2)


@njit(cache=True)
def jacobian_products(W: np.ndarray, D: np.ndarray, e: np.ndarray, spectral: bool) -> tuple:
    """log ||dx_T/dx_{T-l}|| and log ||e^T dx_T/dx_{T-l}|| for l = 0..T (equation (5)).

    P_0 = I, P_l = P_{l-1} W diag(sigma'(x_{T-l})); the product is renormalised
    every step and its log scale carried, so nothing overflows.  The norm is
    the spectral norm (largest singular value, by warm-started power
    iteration) or, if not spectral, Frobenius.
    The row vector e stands for dE_T/dx_T; delta_l = e^T P_l is carried the
    same way (equation (4)'s temporal contributions without d+x_k/dtheta).
    """
    T = D.shape[0] - 1
    n = W.shape[0]
    u = np.ones(n) / math.sqrt(n)
    lognorm = np.empty(T + 1)
    logdelta = np.empty(T + 1)
    P = np.eye(n)
    scale = 0.0
    d = e.copy()
    dscale = 0.0
    for l in range(T + 1):
        if l > 0:
            dk = D[T - l]
            A = W * dk.reshape(1, n)  # W diag(sigma'(x_{T-l}))
            P = P @ A
            d = d @ A
            f = math.sqrt(np.sum(P * P))
            if f == 0.0 or not math.isfinite(f):
                for m in range(l, T + 1):
                    lognorm[m] = -np.inf if f == 0.0 else np.inf
                    logdelta[m] = lognorm[m]
                return lognorm, logdelta
            P = P / f
            scale += math.log(f)
            g = math.sqrt(np.sum(d * d))
            if g == 0.0:
                d[:] = 0.0
                dscale = -np.inf
            else:
                d = d / g
                dscale += math.log(g)
        if spectral:
            lognorm[l] = math.log(_top_singular(P, u, 5000)) + scale
        else:
            lognorm[l] = math.log(math.sqrt(np.sum(P * P))) + scale
        g = math.sqrt(np.sum(d * d))
        logdelta[l] = (math.log(g) + dscale) if g > 0.0 else -np.inf
    return lognorm, logdelta
