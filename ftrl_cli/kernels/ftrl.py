"""The optimizers over the weight table: FTRL-Proximal online (Algorithm 1 of McMahan et
al., "Ad Click Prediction: a View from the Trenches", KDD 2013, with TensorFlow/Keras's
lr_power, initial accumulator and L2 shrinkage), the mini-batch Keras/TF/MXNet FTRL and
tensorflow-addons NovoGrad; scoring from the state; feature id -> slot.

Names follow the paper: alpha, beta, l1, l2 (lambda1, lambda2), z, n, w, g, sigma.
The online state table `zn` is interleaved, shape (D, 2): zn[i, 0] = z_i, zn[i, 1] = n_i,
so one cache line serves both (twice as fast as separate arrays once D outgrows the cache).

Every cache=True kernel here calls only helpers defined in this file (see libsvm.py).
"""

import numpy as np
from numba import config as _numba_config
from numba import njit, types
from numba.extending import intrinsic, overload

__all__ = [  # the names ftrl_cli.kernels re-exports
    "slots_of", "merge_pairs", "sum_by_slot", "prefetch_row", "ftrl_online", "weights_from_state", "margins_state", "sigmoid_array",
    "running_logloss", "logloss_sum", "HP_BETA", "HP_L1", "HP_L2", "HP_SHRINK", "HP_P", "HP_BIAS_L1",
    "HP_BIAS_L2", "HP_WD", "HP_CLIPNORM", "HP_GCLIPNORM", "HP_CLIPVALUE", "HP_EMA_MOM", "HP_LOSS_SCALE",
    "HP_GSCALE", "HP_BIAS_LR", "HP_BETA1", "HP_BETA2", "HP_EPS", "HP_ALPHA", "N_HP", "FL_DENSE", "FL_BIAS",
    "FL_EMA_COL", "FL_ACC_COL", "FL_ACCUM", "FL_EMA_FREQ", "FL_NOVOGRAD", "FL_AMSGRAD", "FL_GRAD_AVG", "FL_ONLINE",
    "N_FL", "COL_Z", "COL_N", "COL_W", "COL_M", "LS_V_W", "LS_V_B", "LS_VHAT_W", "LS_VHAT_B",
    "train_minibatch",
]


# --------------------------------------------------------------------------------------
# Feature id -> table slot
# --------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _mix64(x):
    # splitmix64's finalizer: a fixed, well-spread 64-bit bijection (stable everywhere)
    x = np.uint64(x)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return x


@njit(cache=True, inline="always")
def _slot(fid, cap):
    """Ids below the table capacity keep their own slot; larger ids are hashed into it."""
    if fid < cap:
        return fid
    return np.int64(_mix64(fid) & np.uint64(cap - 1))


@njit(cache=True, nogil=True)
def slots_of(ids, cap, out):
    """out[k] = slot of ids[k] for a table of capacity cap (a power of two)."""
    for k in range(len(ids)):
        out[k] = _slot(ids[k], cap)


@njit(cache=True, nogil=True)
def merge_pairs(a, b, out, limit):
    """The distinct rows of a and b in (slot, id) order, at most `limit` of them, into out.
    Returns (rows written, whether a distinct row was left out). A model's alias table is
    kept this way: one pass over it per batch with new pairs, not a sort of all of it.

    # Assumes: a and b are (n, 2) int64 arrays sorted by (slot, id), a's rows distinct (b's
    #          may repeat); out has at least min(len(a) + len(b), limit) rows; limit >= 0.
    """
    na, nb = a.shape[0], b.shape[0]
    i = j = k = 0
    while i < na or j < nb:
        if j >= nb or (i < na and (a[i, 0] < b[j, 0] or (a[i, 0] == b[j, 0] and a[i, 1] <= b[j, 1]))):
            s, f = a[i, 0], a[i, 1]
            i += 1
        else:
            s, f = b[j, 0], b[j, 1]
            j += 1
        if k > 0 and out[k - 1, 0] == s and out[k - 1, 1] == f:
            continue  # (a row of b already taken)
        if k == limit:
            return k, True
        out[k, 0] = s
        out[k, 1] = f
        k += 1
    return k, False


@njit(cache=True, nogil=True)
def sum_by_slot(indptr, ids, values, cap, out_indptr, out_ids, out_values):
    """Each row as a vector over table slots: ids that share a slot (hashed ids colliding
    with each other or with a small id) become one entry, the slot, with their values
    summed in the order they come; each slot keeps its first place in the row. Returns
    the number of entries written.

    # Assumes: ids >= 0; cap a power of two; out_indptr has len(indptr) entries and
    #          out_ids / out_values at least len(ids) (a row never grows).
    """
    nrows = len(indptr) - 1
    maxlen = 0
    for r in range(nrows):
        maxlen = max(maxlen, indptr[r + 1] - indptr[r])
    size = 8
    while size < 2 * maxlen:
        size *= 2
    keys = np.full(size, -1, np.int64)  # open addressing: slot -> its entry in the row
    where = np.zeros(size, np.int64)
    mask = np.uint64(size - 1)
    o = 0
    out_indptr[0] = 0
    for r in range(nrows):
        start = o
        for k in range(indptr[r], indptr[r + 1]):
            s = _slot(ids[k], cap)
            h = _mix64(s) & mask
            while keys[h] != -1 and keys[h] != s:
                h = (h + np.uint64(1)) & mask
            if keys[h] == s:
                out_values[where[h]] += values[k]
            else:
                keys[h] = s
                where[h] = o
                out_ids[o] = s
                out_values[o] = values[k]
                o += 1
        for e in range(start, o):  # clear only what this row used
            h = _mix64(out_ids[e]) & mask
            while keys[h] != out_ids[e]:
                h = (h + np.uint64(1)) & mask
            keys[h] = -1
        out_indptr[r + 1] = o
    return o


# --------------------------------------------------------------------------------------
# Memory prefetch
# --------------------------------------------------------------------------------------

if _numba_config.DISABLE_JIT:

    def _prefetch_intrinsic(table, i):
        """No-op without the JIT (NUMBA_DISABLE_JIT=1 runs the kernels as plain Python)."""

else:

    @intrinsic
    def _prefetch_intrinsic(typingctx, table, i):
        """Hint the CPU to fetch row i of table (1-D or 2-D) into cache for writing.

        # Assumes: table is C-contiguous and 0 <= i < table.shape[0]
        #          (a prefetch of a bad address is harmless, but keep it in range).
        The state table is far larger than the cache and feature ids are scattered, so
        most rows wait on memory; fetching the next row's slots while this row computes
        hides that wait (about 1.8x on a 2^24-slot table).
        """
        from llvmlite import ir
        from numba.core import cgutils

        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            zero = context.get_constant(types.intp, 0)
            index = [args[1]] + [zero] * (aryty.ndim - 1)
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, index)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            # (address, 1 = for a write, 3 = keep in all cache levels, 1 = data)
            builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 1), ir.Constant(i32, 3),
                              ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return types.void(table, types.intp), codegen


@njit(cache=True, inline="always")
def prefetch_row(table, i):
    # a jitted wrapper, so that a kernel's py_func (plain Python) can call it too
    _prefetch_intrinsic(table, i)


# --------------------------------------------------------------------------------------
# FTRL-Proximal
# --------------------------------------------------------------------------------------
# One hyper-parameter layout for every optimizer kernel (model.hyperparameters builds it):
# settings travel in hp (float64) and flags in fl (int64); NaN in hp means "off". The
# online kernel reads alpha, beta, l1, l2, shrinkage, p and the bias's l1/l2 and flag; the
# mini-batch kernel takes its learning rates per step (schedules) and reads the rest.

HP_BETA, HP_L1, HP_L2, HP_SHRINK, HP_P, HP_BIAS_L1, HP_BIAS_L2, HP_WD = 0, 1, 2, 3, 4, 5, 6, 7
HP_CLIPNORM, HP_GCLIPNORM, HP_CLIPVALUE, HP_EMA_MOM, HP_LOSS_SCALE, HP_GSCALE = 8, 9, 10, 11, 12, 13
HP_BIAS_LR, HP_BETA1, HP_BETA2, HP_EPS, HP_ALPHA = 14, 15, 16, 17, 18
N_HP = 19
FL_DENSE, FL_BIAS, FL_EMA_COL, FL_ACC_COL, FL_ACCUM, FL_EMA_FREQ = 0, 1, 2, 3, 4, 5
FL_NOVOGRAD, FL_AMSGRAD, FL_GRAD_AVG, FL_ONLINE = 6, 7, 8, 9
N_FL = 10
# state columns: online z, n; mini-batch FTRL z, n, w; NovoGrad m, (unused), w
COL_Z, COL_N, COL_W, COL_M = 0, 1, 2, 0
# layer scalars ls: NovoGrad v and vhat for the weight vector and the bias
LS_V_W, LS_V_B, LS_VHAT_W, LS_VHAT_B = 0, 1, 2, 3



@njit(cache=True, inline="always")
def _weight(z, n, alpha, beta, l1, l2, p):
    """Closed-form w from (z, n): 0 if |z| <= l1, else -(z - sgn(z) l1) / ((beta + n^p)/alpha + l2)."""
    if abs(z) <= l1:
        return 0.0
    if p == 0.5:
        root = np.sqrt(n)
    else:
        root = n**p
    denom = (beta + root) / alpha + l2
    if z > 0:
        return -(z - l1) / denom
    return -(z + l1) / denom


@njit(cache=True, inline="always")
def _root(n, p):
    """n^p, with sqrt for the paper's p = 0.5."""
    if p == 0.5:
        return np.sqrt(n)
    return n**p


@njit(cache=True, inline="always")
def _weight_root(z, root, alpha, beta, l1, l2):
    """_weight with n^p given, without a branch on |z| <= l1: whether a weight is zeroed
    is a coin flip for the CPU's branch predictor, and a select costs less than a miss.
    The division runs either way, so callers compile with error_model="numpy": a zero
    denominator (beta = 0, n = 0, only where z = 0 too) gives inf/nan that is not selected."""
    denom = (beta + root) / alpha + l2
    num = z - l1 if z > 0 else z + l1
    w = -num / denom
    return 0.0 if abs(z) <= l1 else w


@njit(cache=True, inline="always")
def _sigma(n, n_new, alpha, p):
    if p == 0.5:
        return (np.sqrt(n_new) - np.sqrt(n)) / alpha
    return (n_new**p - n**p) / alpha


@njit(cache=True, inline="always")
def _sigmoid(m):
    if m >= 0:
        return 1.0 / (1.0 + np.exp(-m))
    e = np.exp(m)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def _logloss(m, y):
    # -[y log p + (1-y) log(1-p)] with p = sigmoid(m), written to never overflow
    return np.log1p(np.exp(-abs(m))) + max(m, 0.0) - y * m


def _to_state(table, x):
    """x as a scalar of the state table's dtype (float32 tables do float32 math)."""
    return table.dtype.type(x)  # (plain Python; jitted code uses the overload below)


@overload(_to_state, inline="always")
def _to_state_impl(table, x):
    cast = table.dtype

    def impl(table, x):
        return cast(x)

    return impl


@njit(cache=True, nogil=True, error_model="numpy")  # IEEE division: see _weight_root
def ftrl_online(indptr, ids, values, labels, weights, zn, bias_zn, cap, hp, fl, margins, loss0=0.0):
    """Train per example (Algorithm 1), lazily: only the coordinates present in a row.

    # Assumes: every slot of ids is < len(zn) (ids < cap keep their slot, larger ids are
    #          hashed into [0, cap) and then len(zn) == cap); labels are 0/1;
    #          hp[HP_P] = -lr_power > 0; len(margins) == number of rows; bias_zn has zn's
    #          dtype; hp, fl in the layout of train_minibatch (model.hyperparameters).

    indptr, ids, values : CSR rows (int64, int64, float64); weights: float64 per-row
    importance (multiplies g). zn : (D, 2) z and n, modified in place; bias_zn : (2,)
    the bias's (z, n), modified in place. margins : out, the margin x.w used for each
    row's prediction *before* its update (progressive validation).
    Per-coordinate arithmetic runs in the state's precision: float64 is Algorithm 1 to the
    last bit; a float32 table also computes in float32 (as VW does: ~1.25x faster), while
    margins, the sigmoid and the loss stay float64.
    Returns loss0 plus the rows' progressive log loss (weighted), added row by row: pass the
    running total as loss0 and it does not depend on where batches end.
    """
    nrows = len(indptr) - 1
    loss = loss0
    maxlen = 0
    for r in range(nrows):
        ln = indptr[r + 1] - indptr[r]
        if ln > maxlen:
            maxlen = ln
    wbuf = np.empty(maxlen, zn.dtype)
    rbuf = np.empty(maxlen, zn.dtype)
    sbuf = np.empty(maxlen, np.int64)
    alpha, beta, l1, l2, p = hp[HP_ALPHA], hp[HP_BETA], hp[HP_L1], hp[HP_L2], hp[HP_P]
    l2_shrinkage, bias_l1, bias_l2 = hp[HP_SHRINK], hp[HP_BIAS_L1], hp[HP_BIAS_L2]
    use_bias = fl[FL_BIAS] != 0
    # the settings in the state's precision
    alpha_s, beta_s, p_s = _to_state(zn, alpha), _to_state(zn, beta), _to_state(zn, p)
    l1_s, l2_s, two_s = _to_state(zn, l1), _to_state(zn, l2), _to_state(zn, 2.0 * l2_shrinkage)
    bl1_s, bl2_s = _to_state(zn, bias_l1), _to_state(zn, bias_l2)
    for r in range(nrows):
        a = indptr[r]
        b = indptr[r + 1]
        if r + 1 < nrows:  # start fetching the next row's state now
            for k in range(b, indptr[r + 2]):
                prefetch_row(zn, _slot(ids[k], cap))
        # predict: every load is independent, so the CPU overlaps the cache misses
        m = 0.0
        for k in range(a, b):
            s = _slot(ids[k], cap)
            sbuf[k - a] = s
            root = _root(zn[s, 1], p_s)
            rbuf[k - a] = root  # n^p, reused by the update
            w = _to_state(zn, _weight_root(zn[s, 0], root, alpha_s, beta_s, l1_s, l2_s))
            wbuf[k - a] = w
            m += np.float64(w) * values[k]
        wb = _to_state(zn, 0.0)
        rb = _root(bias_zn[1], p_s)
        if use_bias:
            wb = _to_state(zn, _weight_root(bias_zn[0], rb, alpha_s, beta_s, bl1_s, bl2_s))
            m += np.float64(wb)
        margins[r] = m
        y = labels[r]
        iw = weights[r]
        # log loss and sigmoid from one exp (same formulas as _logloss and _sigmoid)
        e = np.exp(-abs(m))
        loss += iw * (np.log1p(e) + max(m, 0.0) - y * m)
        g0 = ((1.0 / (1.0 + e) if m >= 0 else e / (1.0 + e)) - y) * iw
        # update
        for k in range(a, b):
            s = sbuf[k - a]
            w = wbuf[k - a]
            g = _to_state(zn, g0 * values[k])
            n_new = zn[s, 1] + g * g
            sigma = (_root(n_new, p_s) - rbuf[k - a]) / alpha_s
            zn[s, 0] = zn[s, 0] + (g + two_s * w) - sigma * w
            zn[s, 1] = n_new
        if use_bias:
            gb = _to_state(zn, g0)
            n_new = bias_zn[1] + gb * gb
            sigma = (_root(n_new, p_s) - rb) / alpha_s
            bias_zn[0] = bias_zn[0] + (gb + two_s * wb) - sigma * wb
            bias_zn[1] = n_new
    return loss


@njit(cache=True, nogil=True)
def weights_from_state(zn, hp, bias, out):
    """out[i] = w_i computed from (z_i, n_i), in the state's precision (as ftrl_online);
    with bias, under the bias's l1 and l2.

    # Assumes: zn has shape (D, >= 2) with z, n in columns 0, 1; len(out) >= D.
    """
    alpha, beta, p = hp[HP_ALPHA], hp[HP_BETA], hp[HP_P]
    l1 = hp[HP_BIAS_L1] if bias else hp[HP_L1]
    l2 = hp[HP_BIAS_L2] if bias else hp[HP_L2]
    alpha_s, beta_s, p_s = _to_state(zn, alpha), _to_state(zn, beta), _to_state(zn, p)
    l1_s, l2_s = _to_state(zn, l1), _to_state(zn, l2)
    for i in range(zn.shape[0]):
        out[i] = _to_state(zn, _weight_root(zn[i, 0], _root(zn[i, 1], p_s), alpha_s, beta_s, l1_s, l2_s))


@njit(cache=True, nogil=True, error_model="numpy")  # IEEE division: see _weight_root
def margins_state(indptr, ids, values, st, cap, hp, fl, bias_w, out):
    """out[r] = x_r . w + bias_w, w read from the optimizer state: computed from (z, n) for
    online FTRL (the same arithmetic as weights_from_state), column COL_W otherwise. Scoring
    needs no float64 copy of the whole table: for a big table, computing the touched
    weights costs less than writing every one (and saves the copy's memory).

    # Assumes: st has shape (D, K), D <= cap, cap a power of two; slots beyond D were
    #          never trained and weigh 0 (checked here: predict data may hold unseen ids).
    """
    D = st.shape[0]
    nrows = len(indptr) - 1
    online = fl[FL_ONLINE] != 0
    alpha, beta, l1, l2, p = hp[HP_ALPHA], hp[HP_BETA], hp[HP_L1], hp[HP_L2], hp[HP_P]
    alpha_s, beta_s, p_s = _to_state(st, alpha), _to_state(st, beta), _to_state(st, p)
    l1_s, l2_s = _to_state(st, l1), _to_state(st, l2)
    for r in range(nrows):
        if r + 1 < nrows:
            for k in range(indptr[r + 1], indptr[r + 2]):
                s = _slot(ids[k], cap)
                if s < D:
                    prefetch_row(st, s)
        m = bias_w
        for k in range(indptr[r], indptr[r + 1]):
            s = _slot(ids[k], cap)
            if s < D:
                if online:
                    w = np.float64(_to_state(st, _weight_root(st[s, 0], _root(st[s, 1], p_s), alpha_s,
                                                               beta_s, l1_s, l2_s)))
                else:
                    w = np.float64(st[s, COL_W])
                m += w * values[k]
        out[r] = m


@njit(cache=True, nogil=True)
def sigmoid_array(m, out):
    # Assumes: len(out) >= len(m).
    for i in range(len(m)):
        out[i] = _sigmoid(m[i])


@njit(cache=True, nogil=True)
def running_logloss(total, m, y, weights, out):
    """out[i] = total + the weighted log losses of rows 0..i, added in order with the very
    arithmetic ftrl_online and train_minibatch use (so a curve point matches their sums).

    # Assumes: m, y, weights and out have the same length.
    """
    for i in range(len(m)):
        total += weights[i] * _logloss(m[i], y[i])
        out[i] = total


@njit(cache=True, nogil=True)
def logloss_sum(m, y, weights):
    """Weighted sum of log losses from margins m and 0/1 labels y."""
    # Assumes: y and weights are as long as m.
    s = 0.0
    for i in range(len(m)):
        s += weights[i] * _logloss(m[i], y[i])
    return s


# --------------------------------------------------------------------------------------
# Mini-batch optimizers (Keras 3 / TF / MXNet FTRL, tensorflow-addons NovoGrad)
# --------------------------------------------------------------------------------------
# State for mini-batch training is one interleaved table st (D, K) plus the bias's row
# bst (K,). FTRL columns: 0 z, 1 n, 2 w; NovoGrad: 0 m (momentum), 1 unused, 2 w.
# Optional columns (index in flags): EMA of w, accumulated gradient.


@njit(cache=True, inline="always")
def _ftrl_step(st, i, g, lr, beta, l1, l2, two_s, p):
    """One Keras/TF FTRL step on coordinate i with gradient g (stored weight in column 2).

    gs = g + 2 s w ; n' = n + g^2 ; z += gs - (n'^p - n^p)/lr * w ; w = f(z, n', lr).
    A learning rate of 0 (a schedule reaching 0, a bias_lr_mult of 0) leaves the coordinate
    as it is (Keras would divide by 0 and give NaN).
    """
    if lr == 0.0:
        return
    w = np.float64(st[i, 2])
    n = np.float64(st[i, 1])
    n_new = n + g * g
    z = np.float64(st[i, 0]) + ((g + two_s * w) - _sigma(n, n_new, lr, p) * w)
    st[i, 0] = z
    st[i, 1] = n_new
    st[i, 2] = _weight(z, n_new, lr, beta, l1, l2, p)


@njit(cache=True, inline="always")
def _clip_norm(g, sumsq, c):
    """Keras clip_by_norm of one element: g * c / max(||g||, c)."""
    return g * c / max(np.sqrt(sumsq), c)


@njit(cache=True, nogil=True)
def train_minibatch(indptr, ids, values, y, sw, cap, B, lrs, it0, st, bst, ls, hp, fl,
                    gbuf, mark, touched, margins, loss0=0.0):
    """Mini-batch training: per batch of B rows, the gradient of the mean weighted log loss,
    then one optimizer step (Keras 3 order: loss scale -> accumulation -> clip -> weight
    decay -> update -> EMA).

    # Assumes: every slot of ids is < st.shape[0] (see ftrl_online); gbuf float64[D] is all
    #          zeros and mark uint8[D] all zeros on entry (both are left so); touched int64[D];
    #          lrs holds one learning rate per step (ceil(rows / B)); the bias's lr is
    #          lr * hp[HP_BIAS_LR]. it0 = optimizer iterations before the first step.

    dense (fl[FL_DENSE]=1): every allocated coordinate is updated each step (Keras);
    lazy: only the coordinates present in the batch (TF sparse ops, MXNet row_sparse).
    Returns (loss0 + summed weighted progressive log loss, row by row; steps taken). margins[r] gets the
    margin of row r under the weights before its batch's step.
    """
    nrows = len(indptr) - 1
    D = st.shape[0]
    dense = fl[FL_DENSE] == 1
    use_bias = fl[FL_BIAS] == 1
    ema_col = fl[FL_EMA_COL]
    acc_col = fl[FL_ACC_COL]
    accum = fl[FL_ACCUM]
    ema_freq = fl[FL_EMA_FREQ]
    novograd = fl[FL_NOVOGRAD] == 1
    beta, l1, l2, p = hp[HP_BETA], hp[HP_L1], hp[HP_L2], hp[HP_P]
    two_s = 2.0 * hp[HP_SHRINK]
    wd = hp[HP_WD]
    loss = loss0
    step = 0
    r0 = 0
    while r0 < nrows:
        r1 = min(r0 + B, nrows)
        nb = np.float64(r1 - r0)
        it = it0 + step
        lr = lrs[step]
        blr = lr * hp[HP_BIAS_LR]
        # ---- forward with the stored weights, gradient of the mean loss --------------
        nt = 0
        gb = 0.0
        for r in range(r0, r1):
            if r + 1 < nrows:  # fetch the next row's state and gradient slots meanwhile
                for k in range(indptr[r + 1], indptr[r + 2]):
                    s = _slot(ids[k], cap)
                    prefetch_row(st, s)
                    prefetch_row(gbuf, s)
                    prefetch_row(mark, s)
            m = 0.0
            for k in range(indptr[r], indptr[r + 1]):
                m += st[_slot(ids[k], cap), COL_W] * values[k]
            if use_bias:
                m += bst[COL_W]
            margins[r] = m
            loss += sw[r] * _logloss(m, y[r])
            res = (_sigmoid(m) - y[r]) * sw[r] / nb
            for k in range(indptr[r], indptr[r + 1]):
                s = _slot(ids[k], cap)
                if mark[s] == 0:
                    mark[s] = 1
                    touched[nt] = s
                    nt += 1
                gbuf[s] += res * values[k]
            gb += res
        # the coordinates this step updates
        if dense:
            nt = D
            for i in range(D):
                touched[i] = i
        if not np.isnan(hp[HP_LOSS_SCALE]):  # Keras scales the loss, then unscales grads
            f = hp[HP_LOSS_SCALE]
            inv_f = 1.0 / f  # g / f, folded to g * (1/f) in TF's graph
            for t in range(nt):
                gbuf[touched[t]] = (gbuf[touched[t]] * f) * inv_f
            gb = (gb * f) * inv_f
        if hp[HP_GSCALE] != 1.0:  # MXNet rescale_grad (relative to the batch mean)
            for t in range(nt):
                gbuf[touched[t]] *= hp[HP_GSCALE]
            gb *= hp[HP_GSCALE]
        apply = True
        if accum > 1:  # Keras gradient accumulation (dense only; checked by the caller)
            if (it + 1) % accum != 0:
                apply = False
                for i in range(D):
                    st[i, acc_col] += gbuf[i]
                bst[acc_col] += gb
            else:  # (g + acc) / k, folded to (g + acc) * (1/k)
                inv_k = 1.0 / accum
                for i in range(D):
                    gbuf[i] = (gbuf[i] + st[i, acc_col]) * inv_k
                    st[i, acc_col] = 0.0
                gb = (gb + bst[acc_col]) * inv_k
                bst[acc_col] = 0.0
        if apply:
            # ---- clipping: exactly one kind is on ---------------------------------------
            if not np.isnan(hp[HP_CLIPNORM]):
                sq = 0.0
                for t in range(nt):
                    sq += gbuf[touched[t]] ** 2
                c = hp[HP_CLIPNORM]  # per tensor: the weight vector, then the bias
                for t in range(nt):
                    gbuf[touched[t]] = _clip_norm(gbuf[touched[t]], sq, c)
                gb = _clip_norm(gb, gb * gb, c)
            elif not np.isnan(hp[HP_GCLIPNORM]):
                sq = gb * gb if use_bias else 0.0
                for t in range(nt):
                    sq += gbuf[touched[t]] ** 2
                c = hp[HP_GCLIPNORM]
                if sq > 0.0:  # an all-zero gradient is left as is (Keras: scale 1)
                    f = c * min(1.0 / np.sqrt(sq), 1.0 / c)
                    for t in range(nt):
                        gbuf[touched[t]] *= f
                    gb *= f
            elif not np.isnan(hp[HP_CLIPVALUE]):
                c = hp[HP_CLIPVALUE]
                for t in range(nt):
                    gbuf[touched[t]] = min(max(gbuf[touched[t]], -c), c)
                gb = min(max(gb, -c), c)
            # ---- decoupled weight decay: w <- w - w * wd * lr --------------------------
            if wd != 0.0 and not novograd:  # (NovoGrad's wd is part of its own step)
                for t in range(nt):
                    i = touched[t]
                    st[i, COL_W] = st[i, COL_W] - st[i, COL_W] * wd * lr
                if use_bias:
                    bst[COL_W] = bst[COL_W] - bst[COL_W] * wd * blr
            # ---- update ---------------------------------------------------------------
            if not novograd:
                for t in range(nt):
                    if t + 16 < nt:  # the touched slots are scattered: fetch ahead
                        prefetch_row(st, touched[t + 16])
                        prefetch_row(gbuf, touched[t + 16])
                    _ftrl_step(st, touched[t], gbuf[touched[t]], lr, beta, l1, l2, two_s, p)
                if use_bias:
                    _ftrl_step(bst.reshape(1, -1), 0, gb, blr, beta, hp[HP_BIAS_L1], hp[HP_BIAS_L2], two_s, p)
            else:
                _novograd_layer(st, touched, nt, gbuf, lr, it, hp, fl, ls, LS_V_W, LS_VHAT_W)
                if use_bias:
                    gbb = np.empty(1)
                    gbb[0] = gb
                    one = np.zeros(1, np.int64)
                    _novograd_layer(bst.reshape(1, -1), one, 1, gbb, blr, it, hp, fl, ls, LS_V_B, LS_VHAT_B)
        # ---- exponential moving average of the weights (Keras use_ema) --------------
        # Runs on every step, also the accumulate-only ones, with Keras's *divided* counter
        # iterations = it // k: momentum 0 while it is 0, overwrite when (c + 1) % freq == 0.
        if ema_col >= 0:
            c_it = it // accum if accum > 1 else it
            mom = hp[HP_EMA_MOM] if c_it != 0 else 0.0
            for i in range(D):
                st[i, ema_col] = mom * st[i, ema_col] + (1.0 - mom) * st[i, COL_W]
            bst[ema_col] = mom * bst[ema_col] + (1.0 - mom) * bst[COL_W]
            if ema_freq > 0 and (c_it + 1) % ema_freq == 0:
                for i in range(D):
                    st[i, COL_W] = st[i, ema_col]
                bst[COL_W] = bst[ema_col]
        # ---- reset the scratch buffers ----------------------------------------------
        if dense:
            for i in range(D):
                gbuf[i] = 0.0
                mark[i] = 0
        else:
            for t in range(nt):
                gbuf[touched[t]] = 0.0
                mark[touched[t]] = 0
        step += 1
        r0 = r1
    return loss, step


@njit(cache=True)
def _novograd_layer(st, touched, nt, g, lr, it, hp, fl, ls, v_at, vhat_at):
    """tensorflow-addons NovoGrad on one layer (the weight vector, or the bias).

    v = sum(g^2) on the first step, else beta2 v + (1-beta2) sum(g^2)  (a layer scalar);
    d = sqrt(v) + eps (amsgrad: sqrt(max(vhat, v)) + eps); G = g/d + wd w;
    G *= (1-beta1) after the first step when grad_averaging; m = beta1 m - lr G; w += m.
    """
    b1, b2, eps, wd = hp[HP_BETA1], hp[HP_BETA2], hp[HP_EPS], hp[HP_WD]
    g2 = 0.0
    for t in range(nt):
        g2 += g[touched[t]] ** 2
    if it == 0:
        v = g2
    else:
        v = b2 * ls[v_at] + (1.0 - b2) * g2
    ls[v_at] = v
    if fl[FL_AMSGRAD] == 1:
        vh = max(ls[vhat_at], v)
        ls[vhat_at] = vh
        d = np.sqrt(vh) + eps
    else:
        d = np.sqrt(v) + eps
    avg = fl[FL_GRAD_AVG] == 1 and it != 0
    for t in range(nt):
        i = touched[t]
        w = np.float64(st[i, COL_W])
        G = g[i] / d
        if wd > 0:
            G += wd * w
        if avg:
            G *= 1.0 - b1
        m = b1 * np.float64(st[i, COL_M]) - lr * G
        st[i, COL_M] = m
        st[i, COL_W] = w + m
