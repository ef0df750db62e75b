// fastloss: the classification losses: binary ones (elementwise, y_true in
// [0, 1] or {-1, 1}) and losses over a class axis (one loss per row).
//
// As in regression.hpp: one options struct (fields, docs) and one registry
// row per loss; the formulas are the element functors of
// cpp/src/losses/classification-inl.h.
//
// Binary losses: y_true holds targets in [0, 1] (checked: a value outside is
// an Error; NaN is not, it propagates); hinge-type losses take labels in
// {-1, 1} (0 counts as -1). Label smoothing replaces y by y (1 - ls) + ls / 2.
//
// Row losses: y_pred has at least one dimension; `axis` (negative counts from
// the end) is the class axis of length C >= 1. The other dimensions are the
// rows (their shape R is y_pred's shape without the axis): each row has one
// loss l_r. Dense losses take a Call<T> whose y_true has y_pred's shape;
// label losses take a LabelCall<T> whose labels have shape R. In both,
// `weights` broadcast to R, `losses` (kNone) has shape R and `grad` y_pred's
// shape. kMean divides by D = sum of the row weights (the number of rows
// without weights) unless a loss says otherwise; a mean over nothing is NaN
// with a zero gradient.
#ifndef FASTLOSS_CLASSIFICATION_HPP_
#define FASTLOSS_CLASSIFICATION_HPP_

#include "fastloss/options.hpp"

namespace fastloss {

// --- Binary (elementwise) --------------------------------------------------------
struct BinaryCrossEntropyOptions {
  bool from_logits = false;
  double eps = 1e-7;
  double pos_weight = 1.0;
  double label_smoothing = 0.0;
  FASTLOSS_FIELDS(
      FASTLOSS_BOOL(from_logits, "``y_pred`` holds logits (else probabilities).")
      FASTLOSS_REAL(eps, kAny,
                    "Clipping of probabilities, in (0, 0.5); 1 - eps must stay below 1 in the "
                    "inputs' dtype (float32: eps > 2^-25 = 2.98e-8; float64: eps > 2^-54). "
                    "Unused with ``from_logits``.")
      FASTLOSS_REAL_OR_ARRAY(pos_weight, kPositive,
                             "Weight of the positive term (> 0), or an array broadcastable to "
                             "``y_pred`` (e.g. one per class, as PyTorch's ``pos_weight``).")
      FASTLOSS_REAL(label_smoothing, kHalfOpenUnit, "In [0, 1): ``y`` becomes ``y (1 - ls) + ls / 2``."))
  FASTLOSS_DOC("Binary cross-entropy (alias ``bce``) on probabilities or logits.",
      "With ``y = y_true * (1 - label_smoothing) + label_smoothing / 2`` and ``pw = "
      "pos_weight``:\n"
      "``from_logits=True`` (PyTorch's ``binary_cross_entropy_with_logits``): ``l = pw "
      "* y * softplus(-x) + (1 - y) * softplus(x)``, ``dl/dx = (1 - y) * sigmoid(x) - "
      "pw * y * sigmoid(-x)``.\n"
      "``from_logits=False`` (Keras' convention): ``pc = clip(p, eps, 1 - eps)``, ``l ="
      " -(pw * y * log(pc) + (1 - y) * log(1 - pc))``, ``dl/dp = -pw * y / pc + (1 - y)"
      " / (1 - pc)`` where ``eps <= p <= 1 - eps`` and 0 where the clip is active.",
      "``y_true`` must lie in [0, 1] (ValueError naming the first position outside; the"
      " check runs as the data is read, so ``out`` may be partly written when it "
      "fails). On logits the loss is exact and finite for any ``|x|`` up to inf: "
      "softplus is ``max(z, 0) + log1p(exp(-|z|))``, a term whose coefficient is "
      "exactly 0 is 0 (never ``0 * inf``; a NaN logit gives NaN), and the gradient uses"
      " ``sigmoid(-x)`` directly, so ``y = 1, x = 80`` gives ``-1.8e-35``, not 0.")
};

struct BinaryFocalOptions {
  std::optional<double> alpha = 0.25;
  double gamma = 2.0;
  bool from_logits = false;
  double eps = 1e-7;
  double label_smoothing = 0.0;
  FASTLOSS_FIELDS(FASTLOSS_OPTIONAL_REAL(alpha, kUnit, "Class balance in [0, 1]; None disables it.") FASTLOSS_REAL(gamma, kNonNegative, "Focusing exponent, >= 0 (0 is weighted cross-entropy).") FASTLOSS_BOOL(from_logits, "``y_pred`` holds logits (else probabilities).") FASTLOSS_REAL(eps, kAny,
                    "Clipping of probabilities, in (0, 0.5); 1 - eps must stay below 1 in the "
                    "inputs' dtype (float32: eps > 2^-25 = 2.98e-8; float64: eps > 2^-54). "
                    "Unused with ``from_logits``.") FASTLOSS_REAL(label_smoothing, kHalfOpenUnit, "In [0, 1): ``y`` becomes ``y (1 - ls) + ls / 2``."))
  FASTLOSS_DOC("Sigmoid focal loss (Lin et al.; torchvision's ``sigmoid_focal_loss`` on logits, "
      "Keras' ``binary_focal_crossentropy`` on probabilities).",
      "With ``y`` smoothed as in ``bce``, ``p = sigmoid(x)`` (or the clipped "
      "probability), ``ce`` the binary cross-entropy and ``pt = p * y + (1 - p) * (1 - "
      "y)``: ``l = alpha_t * ce * (1 - pt)**gamma`` with ``alpha_t = alpha * y + (1 - "
      "alpha) * (1 - y)`` (1 when ``alpha`` is None). The gradient is the exact "
      "derivative (0 through an active clip).",
      "``1 - pt`` is computed as ``sigmoid(x) * (1 - y) + sigmoid(-x) * y`` so it keeps"
      " its accuracy where the model is confident. ``y_true`` must lie in [0, 1].")
};

struct HingeOptions {
  FASTLOSS_FIELDS()
  FASTLOSS_DOC("Hinge loss (Keras' ``hinge``) for labels in {-1, 1}.",
      "``l = max(0, 1 - y * y_pred)``; ``dl/dy_pred = -y`` where ``1 - y * y_pred > "
      "0``, else 0.",
      "A label of exactly 0 counts as -1, so {0, 1} labels work as Keras converts them "
      "(Keras converts only when every label is 0 or 1).")
};

struct SquaredHingeOptions {
  FASTLOSS_FIELDS()
  FASTLOSS_DOC("Squared hinge loss (Keras' ``squared_hinge``) for labels in {-1, 1}.",
      "``l = max(0, 1 - y * y_pred)**2``; ``dl/dy_pred = -2 * y * max(0, 1 - y * "
      "y_pred)``.",
      "A label of exactly 0 counts as -1, as for ``hinge``.")
};

struct SoftMarginOptions {
  FASTLOSS_FIELDS()
  FASTLOSS_DOC("Soft margin loss (PyTorch's ``soft_margin_loss``) for labels in {-1, 1}.",
      "``l = log(1 + exp(-y * y_pred))`` (a stable softplus), ``dl/dy_pred = -y * "
      "sigmoid(-y * y_pred)``.",
      "")
};

struct HingeEmbeddingOptions {
  double margin = 1.0;
  FASTLOSS_FIELDS(FASTLOSS_REAL(margin, kFinite, "The margin for the -1 labels, a finite number."))
  FASTLOSS_DOC("Hinge embedding loss (PyTorch's ``hinge_embedding_loss``) of a distance or score "
               "``x = y_pred`` and labels in {1, -1}.",
               "``l = x`` where ``y = 1`` and ``max(0, margin - x)`` where ``y = -1``; "
               "``dl/dx = 1`` where ``y = 1`` and ``-1`` where ``y = -1`` and ``margin - x > 0`` "
               "(else 0).",
               "Other labels get both terms, ``max(0, margin - x) + x``, exactly as PyTorch "
               "computes them.")
};

// --- Over a class axis (row-wise) ---------------------------------------------------
struct CategoricalCrossEntropyOptions {
  bool from_logits = false;
  double label_smoothing = 0.0;
  double eps = 1e-7;
  int axis = -1;
  FASTLOSS_FIELDS(FASTLOSS_BOOL(from_logits, "``y_pred`` holds logits (else probabilities).") FASTLOSS_REAL(label_smoothing, kHalfOpenUnit, "In [0, 1): ``y`` becomes ``y (1 - ls) + ls / C``.") FASTLOSS_REAL(eps, kAny,
                    "Clipping of probabilities, in (0, 0.5); 1 - eps must stay below 1 in the "
                    "inputs' dtype (float32: eps > 2^-25 = 2.98e-8; float64: eps > 2^-54). "
                    "Unused with ``from_logits``.") FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Categorical cross-entropy with dense targets (alias ``cce``; Keras' "
      "``categorical_crossentropy``, PyTorch's ``cross_entropy`` with probability "
      "targets).",
      "With ``y' = y_true * (1 - label_smoothing) + label_smoothing / C``:\n"
      "``from_logits=True``: ``l = sum_c y'_c * (lse(x) - x_c)``, computed as ``(max - "
      "x_c) + log(sum(exp(x - max)))``; ``dl/dx = softmax(x) * sum(y') - y'``.\n"
      "``from_logits=False`` (Keras): ``q = clip(p / sum(p), eps, 1 - eps)``, ``l = "
      "-sum_c y'_c * log(q_c)``; the gradient is the exact derivative through the "
      "normalisation, ``(U - y'_j / q_j) / sum(p)`` with ``U`` the sum of ``y'`` over "
      "unclipped classes (0 through an active clip).",
      "Logits of -inf (masked classes) get probability 0 and gradient 0; a target on a "
      "masked class gives +inf with a finite gradient; a row whose logits are all -inf "
      "gives NaN with a zero gradient. ``y_true`` must lie in [0, 1] (checked as the "
      "rows are read).")
};

struct SparseCategoricalCrossEntropyOptions {
  bool from_logits = false;
  std::optional<int64_t> ignore_index;
  double label_smoothing = 0.0;
  double eps = 1e-7;
  int axis = -1;
  FASTLOSS_FIELDS(FASTLOSS_BOOL(from_logits, "``y_pred`` holds logits (else probabilities).") FASTLOSS_OPTIONAL_INT(ignore_index,
                            "Rows with this label (e.g. -100) contribute nothing to the value, "
                            "the gradient or the mean's denominator, even if their inputs are NaN.") FASTLOSS_REAL(label_smoothing, kHalfOpenUnit, "In [0, 1): ``y`` becomes ``y (1 - ls) + ls / C``.")
                  FASTLOSS_CLASS_WEIGHTS("One weight per class (length C).")
                  FASTLOSS_REAL(eps, kAny,
                    "Clipping of probabilities, in (0, 0.5); 1 - eps must stay below 1 in the "
                    "inputs' dtype (float32: eps > 2^-25 = 2.98e-8; float64: eps > 2^-54). "
                    "Unused with ``from_logits``.") FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Cross-entropy with integer labels (alias ``sparse_cce``; PyTorch's "
      "``cross_entropy`` with ``weight``, ``ignore_index`` and ``label_smoothing``; "
      "Keras' ``sparse_categorical_crossentropy``).",
      "With ``t`` the label, ``w`` the class weights (1 without) and ``ls = "
      "label_smoothing``: ``l = (1 - ls) * w_t * (-log q_t) + (ls / C) * sum_c w_c * "
      "(-log q_c)``, ``q = softmax(x)`` (``from_logits=True``) or the normalised, "
      "clipped probabilities. Logit gradient: ``(1 - ls) * w_t * (q_j - [j == t]) + (ls"
      " / C) * (sum(w) * q_j - w_j)``.",
      "Rows of logits like ``[1e8, 1e8]`` give ``log 2`` exactly. Memory: nothing "
      "proportional to C is allocated per row; the loss from logits reads each row "
      "twice (statistics, then the gradient) while it is in cache.")
};

struct CategoricalFocalOptions {
  std::optional<double> alpha = 0.25;
  double gamma = 2.0;
  bool from_logits = false;
  double label_smoothing = 0.0;
  double eps = 1e-7;
  int axis = -1;
  FASTLOSS_FIELDS(FASTLOSS_OPTIONAL_REAL(alpha, kUnit, "Class balance in [0, 1]; None disables it.") FASTLOSS_REAL(gamma, kNonNegative, "Focusing exponent, >= 0 (0 is weighted cross-entropy).") FASTLOSS_BOOL(from_logits, "``y_pred`` holds logits (else probabilities).") FASTLOSS_REAL(label_smoothing, kHalfOpenUnit, "In [0, 1): ``y`` becomes ``y (1 - ls) + ls / C``.") FASTLOSS_REAL(eps, kAny,
                    "Clipping of probabilities, in (0, 0.5); 1 - eps must stay below 1 in the "
                    "inputs' dtype (float32: eps > 2^-25 = 2.98e-8; float64: eps > 2^-54). "
                    "Unused with ``from_logits``.") FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Softmax focal loss (Keras' ``categorical_focal_crossentropy``).",
      "``l = -sum_c alpha * y'_c * (1 - q_c)**gamma * log(q_c)`` with ``y'`` smoothed "
      "as in ``cce`` and ``q`` the softmax (``from_logits=True``) or the normalised, "
      "clipped probabilities. The gradient is the exact derivative.",
      "")
};

struct CategoricalHingeOptions {
  int axis = -1;
  FASTLOSS_FIELDS(FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Categorical hinge loss (Keras' ``categorical_hinge``).",
      "``l = max(0, max_c((1 - y_c) * p_c) - sum_c(y_c * p_c) + 1)``; where ``l > 0`` "
      "the gradient is ``-y_j + (1 - y_j) * [j == k]`` with ``k`` the first class "
      "attaining the max.",
      "")
};

struct MultiMarginOptions {
  int p = 1;
  double margin = 1.0;
  int axis = -1;
  FASTLOSS_FIELDS(FASTLOSS_INT(p, "The hinge's exponent: 1 or 2.")
                  FASTLOSS_REAL(margin, kFinite, "The margin, a finite number.")
                  FASTLOSS_CLASS_WEIGHTS("Length C; scales each row by ``w_t``.")
                  FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Multi-class margin loss (PyTorch's ``multi_margin_loss``).",
      "``l = sum_{c != t} w_t * max(0, margin - x_t + x_c)**p / C``.",
      "As in PyTorch, class weights do not enter the mean's denominator.")
};

struct NllOptions {
  std::optional<int64_t> ignore_index;
  int axis = -1;
  FASTLOSS_FIELDS(FASTLOSS_OPTIONAL_INT(ignore_index,
                            "Rows with this label (e.g. -100) contribute nothing to the value, "
                            "the gradient or the mean's denominator, even if their inputs are NaN.")
                  FASTLOSS_CLASS_WEIGHTS("One weight per class (length C).")
                  FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Negative log-likelihood of log-probabilities (PyTorch's ``nll_loss``).",
      "``l = -w_t * y_pred[t]``; gradient ``-w_t`` at the label, 0 elsewhere.",
      "")
};

struct KlDivergenceOptions {
  bool log_input = false;
  bool log_target = false;
  int axis = -1;
  FASTLOSS_FIELDS(
      FASTLOSS_BOOL(log_input, "``y_pred`` holds log-probabilities (PyTorch's ``kl_div`` input).")
      FASTLOSS_BOOL(log_target, "``y_true`` holds log-probabilities.")
      FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Kullback-Leibler divergence KL(y_true || y_pred) per row.",
      "``l = sum_c t_c * (log t_c - log p_c)`` with ``t = y_true`` (or ``exp(y_true)`` "
      "with ``log_target``) and ``log p = y_pred`` (``log_input``) or ``log(y_pred)``; "
      "gradient ``-t`` (``log_input``) or ``-t / y_pred``.",
      "``reduction='mean'`` is the mean over rows: PyTorch's ``reduction='batchmean'``,"
      " the true KL divergence per sample (PyTorch's default ``'mean'`` divides by the "
      "number of elements instead). A zero target contributes 0 with gradient 0; a "
      "positive target against ``log p = -inf`` gives +inf; negative targets give NaN.")
};

struct JensenShannonOptions {
  double beta = 0.5;
  bool log_input = false;
  int axis = -1;
  FASTLOSS_FIELDS(FASTLOSS_REAL(beta, kUnit, "The mixture weight, in [0, 1].")
                  FASTLOSS_BOOL(log_input, "Both inputs hold log-probabilities.")
                  FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Generalized Jensen-Shannon divergence (Liger-Kernel's JSD) between ``P = "
      "y_true`` (teacher) and ``Q = y_pred`` (student).",
      "``M = beta * P + (1 - beta) * Q``, ``l = beta * KL(P || M) + (1 - beta) * KL(Q "
      "|| M)``; ``beta = 0`` is ``KL(P || Q)`` and ``beta = 1`` is ``KL(Q || P)`` "
      "(Liger's convention). Gradient with respect to ``y_pred``: ``(1 - beta) * (log Q"
      " - log M)`` on probabilities, times ``Q`` on log-probabilities.",
      "")
};

struct Poly1CrossEntropyOptions {
  double epsilon = 2.0;
  bool from_logits = true;
  double label_smoothing = 0.0;
  double eps = 1e-7;
  int axis = -1;
  FASTLOSS_FIELDS(
      FASTLOSS_REAL(epsilon, kFinite,
                    "The coefficient of ``1 - p_t`` (optax's default 2.0; negative values down to "
                    "-1 are used too).")
      FASTLOSS_BOOL(from_logits,
                    "``y_pred`` holds logits (the default, as optax), else probabilities.")
      FASTLOSS_REAL(label_smoothing, kHalfOpenUnit, "In [0, 1): ``y`` becomes ``y (1 - ls) + ls / C``.")
      FASTLOSS_REAL(eps, kAny,
                    "Clipping of probabilities, in (0, 0.5); 1 - eps must stay below 1 in the "
                    "inputs' dtype. Unused with ``from_logits``.")
      FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Poly-1 cross-entropy (Leng et al., PolyLoss, 2022; optax's "
               "``poly_loss_cross_entropy``) with dense targets.",
               "With ``q = softmax(x)`` (or the normalised, clipped probabilities) and ``y'`` the "
               "(smoothed) targets: ``l = sum_c y'_c * (-log q_c) + epsilon * sum_c y'_c * (1 - "
               "q_c)``. Logit gradient: ``q_j * sum(y') - y'_j + epsilon * q_j * (sum_c y'_c q_c - "
               "y'_j)``; on probabilities the exact derivative through the normalisation.",
               "With one-hot targets the second sum is ``1 - p_t``; with soft targets it is "
               "optax's ``sum(labels * (1 - softmax(logits)))``.")
};

struct GeneralizedCrossEntropyOptions {
  double q = 0.5;
  std::optional<int64_t> ignore_index;
  int axis = -1;
  FASTLOSS_FIELDS(
      FASTLOSS_REAL(q, kOpenUnit,
                    "In (0, 1): towards 0 the loss approaches cross-entropy, towards 1 the "
                    "absolute error of the label's probability.")
      FASTLOSS_OPTIONAL_INT(ignore_index,
                            "Rows with this label (e.g. -100) contribute nothing to the value, "
                            "the gradient or the mean's denominator.")
      FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Generalized cross-entropy (Zhang and Sabuncu, 2018; Keras' "
               "``CategoricalGeneralizedCrossEntropy``) of class probabilities and integer labels.",
               "With ``p_t = y_pred[t]`` the label's probability, used as given (not normalised or "
               "clipped, as Keras): ``l = (1 - p_t**q) / q``, computed as ``-expm1(q * log(p_t)) / "
               "q``; ``dl/dp_t = -p_t**(q - 1)``, 0 for the other classes.",
               "``p_t = 0`` gives ``1 / q`` with gradient -inf, as the formula says; a negative "
               "``p_t`` gives NaN.")
};

struct MultilabelSoftMarginOptions {
  int axis = -1;
  FASTLOSS_FIELDS(FASTLOSS_CLASS_WEIGHTS("One weight per class (length C): PyTorch's ``weight``.")
                  FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  FASTLOSS_DOC("Multi-label soft margin loss (PyTorch's ``multilabel_soft_margin_loss``) of logits "
               "and per-class targets.",
               "``l = (1 / C) * sum_c w_c * (y_c * softplus(-x_c) + (1 - y_c) * softplus(x_c))``, "
               "which is ``-(1 / C) * sum_c w_c * (y_c * log(sigmoid(x_c)) + (1 - y_c) * "
               "log(sigmoid(-x_c)))``; ``dl/dx_c = w_c * (sigmoid(x_c) - y_c) / C``.",
               "``reduction='mean'`` averages the rows, as PyTorch does. Targets are not range "
               "checked (PyTorch does not either); the softplus form is exact for any logit.")
};

}  // namespace fastloss

// The registry rows (see regression.hpp).
#define FASTLOSS_CLASSIFICATION_LOSSES(X)                                                   \
  X(BinaryCrossEntropy, binary_cross_entropy, Elementwise, "bce", y_true, y_pred)           \
  X(BinaryFocal, binary_focal, Elementwise, "", y_true, y_pred)                             \
  X(Hinge, hinge, Elementwise, "", y_true, y_pred)                                          \
  X(SquaredHinge, squared_hinge, Elementwise, "", y_true, y_pred)                           \
  X(SoftMargin, soft_margin, Elementwise, "", y_true, y_pred)                               \
  X(HingeEmbedding, hinge_embedding, Elementwise, "", y_true, y_pred)                       \
  X(CategoricalCrossEntropy, categorical_cross_entropy, DenseRows, "cce", y_true, y_pred)   \
  X(SparseCategoricalCrossEntropy, sparse_categorical_cross_entropy, LabelRows,             \
    "sparse_cce", y_true, y_pred)                                                           \
  X(CategoricalFocal, categorical_focal, DenseRows, "", y_true, y_pred)                     \
  X(CategoricalHinge, categorical_hinge, DenseRows, "", y_true, y_pred)                     \
  X(MultiMargin, multi_margin, LabelRows, "", y_true, y_pred)                               \
  X(Nll, nll, LabelRows, "", y_true, y_pred)                                                \
  X(GeneralizedCrossEntropy, generalized_cross_entropy, LabelRows, "", y_true, y_pred)      \
  X(KlDivergence, kl_divergence, DenseRows, "", y_true, y_pred)                             \
  X(MultilabelSoftMargin, multilabel_soft_margin, DenseRows, "", y_true, y_pred)            \
  X(JensenShannon, jensen_shannon, DenseRows, "", y_true, y_pred)                           \
  X(Poly1CrossEntropy, poly1_cross_entropy, DenseRows, "", y_true, y_pred)

#endif  // FASTLOSS_CLASSIFICATION_HPP_
