// fastloss: the regression losses (elementwise; r = y_pred - y_true).
//
// Each loss is one options struct here, one registry row in
// FASTLOSS_REGRESSION_LOSSES below and one element functor in
// cpp/src/losses/regression-inl.h. The struct lists its fields once
// (FASTLOSS_FIELDS: name, check, doc line; the default is the member
// initializer) and documents the loss (FASTLOSS_DOC: summary, formula and
// gradient, notes), the text fastloss's Python docstrings are made from.
#ifndef FASTLOSS_REGRESSION_HPP_
#define FASTLOSS_REGRESSION_HPP_

#include "fastloss/options.hpp"

namespace fastloss {

struct MseOptions {
  FASTLOSS_FIELDS()
  FASTLOSS_DOC("Mean squared error (alias ``mean_squared_error``).",
      "With ``r = y_pred - y_true``: ``l = r**2``, ``dl/dy_pred = 2 * r``.",
      "")
};

struct MaeOptions {
  FASTLOSS_FIELDS()
  FASTLOSS_DOC("Mean absolute error (alias ``mean_absolute_error``).",
      "With ``r = y_pred - y_true``: ``l = |r|``, ``dl/dy_pred = sign(r)`` (0 at ``r = "
      "0``, as NumPy's ``sign`` and PyTorch).",
      "")
};

struct HuberOptions {
  double delta = 1.0;
  FASTLOSS_FIELDS(FASTLOSS_REAL(delta, kPositive, "Where the loss turns linear; finite and > 0."))
  FASTLOSS_DOC("Huber loss (PyTorch's ``huber_loss``).",
      "With ``r = y_pred - y_true``: ``l = r**2 / 2`` where ``|r| <= delta``, else "
      "``delta * (|r| - delta / 2)``; ``dl/dy_pred = clip(r, -delta, delta)``. "
      "Continuous in value and gradient at ``|r| = delta``.",
      "")
};

struct SmoothL1Options {
  double beta = 1.0;
  FASTLOSS_FIELDS(FASTLOSS_REAL(beta, kNonNegative, "Finite and >= 0; 0 gives the L1 loss."))
  FASTLOSS_DOC("Smooth L1 loss (PyTorch's ``smooth_l1_loss``).",
      "With ``r = y_pred - y_true``: ``l = r**2 / (2 * beta)`` where ``|r| < beta``, "
      "else ``|r| - beta / 2``; ``dl/dy_pred = r / beta`` where ``|r| < beta``, else "
      "``sign(r)``. ``beta = 0`` is the L1 loss, with the finite gradient ``sign(r)``.",
      "Computed as Huber with ``delta = beta``, divided by ``beta``.")
};

struct LogCoshOptions {
  FASTLOSS_FIELDS()
  FASTLOSS_DOC("Log-cosh loss.",
      "With ``r = y_pred - y_true``: ``l = log(cosh(r))``, ``dl/dy_pred = tanh(r)``.",
      "Stable for every finite residual (``|r|`` up to the largest float): "
      "``log1p(-tanh(|r|)**2) / -2`` below 1 and ``|r| + log1p(expm1(-2|r|) / 2)`` "
      "above, so tiny residuals keep their relative accuracy (``l ~ r**2 / 2``) and "
      "large ones never overflow.")
};

struct MsleOptions {
  FASTLOSS_FIELDS()
  FASTLOSS_DOC("Mean squared logarithmic error.",
      "``l = (log1p(y_pred) - log1p(y_true))**2``, ``dl/dy_pred = 2 * (log1p(y_pred) - "
      "log1p(y_true)) / (1 + y_pred)``.",
      "Inputs below -1 give NaN and -1 gives inf, as ``np.log1p`` (scikit-learn raises "
      "for negative inputs instead; Keras clips them).")
};

struct MapeOptions {
  double eps = 2.220446049250313e-16;
  FASTLOSS_FIELDS(FASTLOSS_REAL(eps, kPositive,
                                "Guards zero targets (``np.finfo(np.float64).eps``, as "
                                "scikit-learn); finite and > 0."))
  FASTLOSS_DOC("Mean absolute percentage error, as a fraction (scikit-learn's convention).",
      "``l = |y_pred - y_true| / max(|y_true|, eps)``, ``dl/dy_pred = sign(y_pred - "
      "y_true) / max(|y_true|, eps)``.",
      "")
};

struct PoissonNllOptions {
  bool log_input = true;
  bool full = false;
  double eps = 1e-8;
  FASTLOSS_FIELDS(
      FASTLOSS_BOOL(log_input, "``y_pred`` holds log-rates.")
      FASTLOSS_BOOL(full, "Add Stirling's approximation term.")
      FASTLOSS_REAL(eps, kNonNegative,
                    "Added to ``y_pred`` inside the log when ``log_input=False``; finite and "
                    ">= 0."))
  FASTLOSS_DOC("Poisson negative log-likelihood (PyTorch's ``poisson_nll_loss``; ``y_pred`` is "
      "PyTorch's ``input``, ``y_true`` its ``target``).",
      "``log_input=True``: ``l = exp(y_pred) - y_true * y_pred``, ``dl/dy_pred = "
      "exp(y_pred) - y_true``.\n"
      "``log_input=False``: ``l = y_pred - y_true * log(y_pred + eps)``, ``dl/dy_pred ="
      " 1 - y_true / (y_pred + eps)``.\n"
      "``full=True`` adds Stirling's term ``y log y - y + log(2 pi y) / 2`` where "
      "``y_true > 1`` (it does not change the gradient).",
      "``exp`` overflows to +inf (never NaN) for large log-rates; ``log(0)`` is -inf, "
      "as in NumPy and PyTorch.")
};

struct QuantileOptions {
  double q = 0.5;
  FASTLOSS_FIELDS(FASTLOSS_REAL(q, kOpenUnit,
                                "The quantile, strictly inside (0, 1). ``q = 0.5`` is half the "
                                "absolute error."))
  FASTLOSS_DOC("Quantile (pinball) loss.",
      "With ``e = y_true - y_pred``: ``l = max(q * e, (q - 1) * e)``; ``dl/dy_pred = "
      "-q`` where ``e > 0``, ``1 - q`` where ``e < 0``, and 0 where ``e = 0``.",
      "")
};

struct TweedieOptions {
  double power = 0.0;
  FASTLOSS_FIELDS(FASTLOSS_REAL(power, kNotOpenUnit,
                                "The Tweedie power p: <= 0 or >= 1 (0 normal, 1 Poisson, "
                                "2 Gamma, 3 inverse Gaussian)."))
  FASTLOSS_DOC("Tweedie deviance (scikit-learn's ``mean_tweedie_deviance``; ``y_pred`` is the "
               "predicted mean ``mu``).",
               "``power=0``: ``l = (y - mu)**2``; ``power=1`` (Poisson): ``l = 2 * (y * "
               "log(y / mu) - y + mu)``; ``power=2`` (Gamma): ``l = 2 * (log(mu / y) + y / mu - "
               "1)``; otherwise ``l = 2 * (max(y, 0)**(2-p) / ((1-p) * (2-p)) - y * mu**(1-p) / "
               "(1-p) + mu**(2-p) / (2-p))``. For every power "
               "``dl/dy_pred = 2 * mu**(-p) * (mu - y)``.",
               "scikit-learn raises for ``y_pred <= 0`` (any ``power != 0``), ``y_true < 0`` "
               "(``power >= 1``) or ``y_true <= 0`` (``power >= 2``); here such elements give NaN "
               "or inf, as NumPy's formula does. ``y log y`` is 0 at ``y = 0``.")
};

// --- Losses of several inputs (the rows of FASTLOSS_REGRESSION_MULTI_LOSSES) -------
struct GaussianNllOptions {
  bool full = false;
  double eps = 1e-6;
  FASTLOSS_FIELDS(
      FASTLOSS_BOOL(full, "Add the constant ``log(2 pi) / 2`` (the full log-likelihood).")
      FASTLOSS_REAL(eps, kPositive, "Lower clamp of the variance, > 0 (PyTorch's eps)."))
  FASTLOSS_DOC("Gaussian negative log-likelihood (PyTorch's ``GaussianNLLLoss``).",
      "``input`` is the predicted mean, ``var`` the predicted variance, elementwise, all "
      "three of one shape: with ``v = max(var, eps)`` and ``r = input - target``, ``l = "
      "(log(v) + r**2 / v) / 2`` (``+ log(2 pi) / 2`` with ``full``); ``dl/dinput = r / v``, "
      "``dl/dvar = (1 / v - r**2 / v**2) / 2``. As in PyTorch, the clamp passes the "
      "gradient through (it is taken at ``v``, also where ``var < eps``).",
      "``var < 0`` is a ValueError (PyTorch's rule; on the GPU: NaN at that element); NaN "
      "passes through. PyTorch also accepts a ``var`` with one dimension fewer or a last "
      "dimension of 1 (one variance per sample): here ``var`` has ``input``'s shape, so "
      "repeat it (``np.broadcast_to``) and sum its gradient over the repeated axis.")
};
// PyTorch's GaussianNLLLoss of inputs {input, var} and target: the
// elementwise driver with var as its aux operand (its gradient: grads[1]).
template <typename T>
double GaussianNll(const MultiCall<T>& call, const GaussianNllOptions& = {});

}  // namespace fastloss

// The registry rows: X(CppName, python_name, driver, "aliases", y_true's name,
// y_pred's name). Everything that lists losses expands this (see registry.hpp).
#define FASTLOSS_REGRESSION_LOSSES(X)                                   \
  X(Mse, mse, Elementwise, "mean_squared_error", y_true, y_pred)        \
  X(Mae, mae, Elementwise, "mean_absolute_error", y_true, y_pred)       \
  X(Huber, huber, Elementwise, "", y_true, y_pred)                      \
  X(SmoothL1, smooth_l1, Elementwise, "", y_true, y_pred)               \
  X(LogCosh, log_cosh, Elementwise, "", y_true, y_pred)                 \
  X(Msle, msle, Elementwise, "", y_true, y_pred)                        \
  X(Mape, mape, Elementwise, "", y_true, y_pred)                        \
  X(PoissonNll, poisson_nll, Elementwise, "", y_true, y_pred)           \
  X(Quantile, quantile, Elementwise, "", y_true, y_pred)                \
  X(Tweedie, tweedie, Elementwise, "", y_true, y_pred)

// The rows of the regression losses of several inputs (see
// FASTLOSS_MULTI_LOSSES in registry.hpp).
#define FASTLOSS_REGRESSION_MULTI_LOSSES(X) \
  X(GaussianNll, gaussian_nll, Elements, "", "input target var", "target")

#endif  // FASTLOSS_REGRESSION_HPP_
