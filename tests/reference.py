"""A plain-Python FTRL-Proximal for logistic regression: the test oracle.

Algorithm 1 of McMahan et al., "Ad Click Prediction: a View from the Trenches", KDD 2013,
written out one example at a time with dict state, in the style of tinrtgu's Kaggle
script. Only the coordinates present in a row are touched (the paper's I = {i : x_i != 0}).

Extensions, with ftrl's documented conventions (all off by default, giving the paper):
  lr_power            n^p with p = -lr_power replaces sqrt(n) (paper: p = 1/2)
  initial_accumulator n_i starts here instead of 0
  l2_shrinkage        z_i also receives 2 * l2_shrinkage * w_i
  importance weight   multiplies the gradient
  bias                a coordinate with x = 1 in every row, with its own l1/l2

No numpy, no numba: every number is a Python float.
"""

import math


def sigmoid(m):
    if m >= 0:
        return 1.0 / (1.0 + math.exp(-m))
    e = math.exp(m)
    return e / (1.0 + e)


def logloss(m, y):
    """-[y log p + (1 - y) log(1 - p)] with p = sigmoid(m), without overflow."""
    return math.log1p(math.exp(-abs(m))) + max(m, 0.0) - y * m


def weight(z, n, alpha, beta, l1, l2, p):
    """Algorithm 1, the per-coordinate closed form:
    w = 0 if |z| <= l1, else -(z - sgn(z) l1) / ((beta + n^p) / alpha + l2)."""
    if abs(z) <= l1:
        return 0.0
    sgn = 1.0 if z > 0 else -1.0
    return -(z - sgn * l1) / ((beta + n ** p) / alpha + l2)


def ftrl_reference(rows, labels, *, alpha, beta, l1, l2, l2_shrinkage=0.0, lr_power=-0.5,
                   initial_accumulator=0.0, bias=True, bias_l1=None, bias_l2=None,
                   weights=None):
    """Train on `rows` (a list of {feature id: value}) with 0/1 `labels`, one pass.

    Returns (z, n, bias_zn, margins, loss): z and n are dicts over the features seen,
    bias_zn is the bias's [z, n] (untouched if bias is off), margins[t] is x_t.w + w_bias
    used for row t's prediction before its update, and loss is the summed (weighted)
    progressive log loss.
    """
    p = -lr_power
    bias_l1 = l1 if bias_l1 is None else bias_l1
    bias_l2 = l2 if bias_l2 is None else bias_l2
    z, n = {}, {}  # Algorithm 1: z_i = 0, n_i = 0 (here n_i = initial_accumulator)
    bz, bn = 0.0, initial_accumulator
    margins = []
    loss = 0.0
    for t, x in enumerate(rows):
        y = labels[t]
        iw = 1.0 if weights is None else weights[t]

        # "for i in I: compute w_{t,i}" -- all of them before any update of this row
        w = {}
        for i in x:
            w[i] = weight(z.get(i, 0.0), n.get(i, initial_accumulator), alpha, beta, l1, l2, p)
        wb = weight(bz, bn, alpha, beta, bias_l1, bias_l2, p) if bias else 0.0

        # "predict p_t = sigma(x_t . w)", here with the bias: x_t . w + w_bias
        m = 0.0
        for i, v in x.items():
            m += w[i] * v
        m += wb
        margins.append(m)
        loss += iw * logloss(m, y)
        g0 = (sigmoid(m) - y) * iw  # g_i = (p_t - y_t) x_i, times the importance weight

        # "for i in I: g_i, sigma_i = (sqrt(n_i + g_i^2) - sqrt(n_i)) / alpha, z_i, n_i"
        for i, v in x.items():
            g = g0 * v
            ni = n.get(i, initial_accumulator)
            n_new = ni + g * g
            sigma = (n_new ** p - ni ** p) / alpha
            z[i] = z.get(i, 0.0) + g + 2.0 * l2_shrinkage * w[i] - sigma * w[i]
            n[i] = n_new
        if bias:  # the bias is one more coordinate, with x = 1
            n_new = bn + g0 * g0
            sigma = (n_new ** p - bn ** p) / alpha
            bz = bz + g0 + 2.0 * l2_shrinkage * wb - sigma * wb
            bn = n_new
    return z, n, [bz, bn], margins, loss
