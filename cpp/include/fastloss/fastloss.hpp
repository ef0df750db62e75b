// fastloss: loss functions and their gradients, SIMD on the CPU.
//
// Public C++17 API. No Highway, CUDA or Python types appear here: a caller
// describes its buffers with non-owning strided views, picks a reduction and
// the loss's options, and gets the reduced value back (and, when asked, the
// gradient and/or the per-element losses written into its own buffers).
//
//   #include <fastloss/fastloss.hpp>
//   fastloss::Call<float> call;
//   call.y_true = fastloss::View<const float>::Contiguous(y, {n});
//   call.y_pred = fastloss::View<const float>::Contiguous(p, {n});
//   call.grad   = fastloss::View<float>::Contiguous(g, {n});   // optional
//   double v = fastloss::Huber(call, {/*delta=*/1.0});
//
// Threading and determinism: every function may be called from any number of
// threads at once. Large inputs are split over an internal pool (see
// SetNumThreads); reductions are accumulated in fixed blocks of
// kReductionBlock elements in float64 and combined in index order, so the
// value and the gradient are bit-for-bit identical for any thread count.
//
// Errors: invalid arguments (shapes, options, missing outputs) throw
// fastloss::Error, a std::invalid_argument, before any output is written.
// Nothing else throws; NaN inputs give NaN outputs. The one check that runs
// as the data is read is the range of y_true (binary and categorical
// losses): arrays of up to 16384 elements (binary) or 32768 elements
// (categorical, rows x classes; or a single row) are checked before
// anything is written;
// in larger arrays the outputs of the parts read before the bad value may
// already be written when the Error is thrown.
//
// Outputs (grad, losses): every element of an output view needs its own
// memory (a zero stride along a dimension longer than 1, or strides that
// make two elements coincide, are an Error naming the output). An output
// may share memory with an input only as an exact alias -- the same data,
// shape and strides -- where a loss allows it (the gradient over y_pred or
// over a y_true of y_pred's shape); any other overlap with an input or
// another output is an Error. Python's `out=` is the gradient view.
//
// Means: kMean divides sum(w * l) by sum(w) (by the count without weights;
// some losses document their own denominator). A mean over nothing -- no
// elements, or weights summing to 0 -- is NaN, with a zero gradient, for
// every loss.
//
// float32 inputs: per-element values are computed in float32 and their sums
// in float64: a reduced value is finite wherever every weighted per-element
// loss is finite in float32 and their float64 sum is (a block whose
// float32 partial sum overflows is summed again in float64), except where
// the gradient is written over an input (in place): there such a block's
// input is gone and the value stays inf.
#ifndef FASTLOSS_FASTLOSS_HPP_
#define FASTLOSS_FASTLOSS_HPP_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastloss/version.hpp"

namespace fastloss {

// Thrown for every invalid argument. The message names the argument, and is
// the same text the Python package raises as ValueError.
class Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Most dimensions a view may have (NumPy's limit).
inline constexpr int kMaxRank = 32;

// Elements per deterministic reduction block (see the header comment).
inline constexpr int64_t kReductionBlock = 1024;

// A non-owning strided view of a buffer. `strides` are in elements, not
// bytes, and may be zero (broadcast) or negative.
template <typename T>
struct View {
  T* data = nullptr;
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[kMaxRank] = {};

  // A C-contiguous view of `data` with the given shape.
  static View Contiguous(T* data, std::initializer_list<int64_t> shape) {
    View v;
    v.data = data;
    for (int64_t s : shape) v.shape[v.rank++] = s;
    int64_t stride = 1;
    for (int k = v.rank - 1; k >= 0; --k) {
      v.strides[k] = stride;
      stride *= v.shape[k];
    }
    return v;
  }
  int64_t size() const {
    int64_t n = 1;
    for (int k = 0; k < rank; ++k) n *= shape[k];
    return n;
  }
  bool valid() const { return data != nullptr || size() == 0; }
};

enum class Reduction {
  kMean,  // sum(w * l) / sum(w); plain mean without weights
  kSum,   // sum(w * l)
  kNone,  // per-element w * l written to Call::losses
};

// One loss evaluation. Inputs and outputs share y_pred's shape exactly,
// except `weights`, which broadcasts to it (NumPy rules, right-aligned).
template <typename T>
struct Call {
  View<const T> y_true;
  View<const T> y_pred;
  // Optional (data == nullptr and rank == 0 means "no weights").
  View<const T> weights;
  bool has_weights = false;
  Reduction reduction = Reduction::kMean;
  // Optional: d(reduced value)/d(y_pred). For kNone, w * dl/dy_pred (the
  // gradient of the sum of the per-element output). May alias y_pred or
  // y_true exactly (same data and strides) for an in-place update.
  View<T> grad;
  bool has_grad = false;
  // With kNone: the per-element losses w * l (kNone needs losses, grad or
  // both). Ignored for the other reductions.
  View<T> losses;
  bool has_losses = false;
};

// --- Options: one struct per loss, the same names and defaults as Python. ---
struct MseOptions {};
struct MaeOptions {};
struct HuberOptions {
  double delta = 1.0;  // > 0
};
struct SmoothL1Options {
  double beta = 1.0;  // >= 0; 0 gives L1
};
struct LogCoshOptions {};
struct MsleOptions {};
struct MapeOptions {
  double eps = 2.220446049250313e-16;  // > 0; guards zero targets
};
struct PoissonNllOptions {
  bool log_input = true;
  bool full = false;
  double eps = 1e-8;  // >= 0; used when !log_input
};
struct QuantileOptions {
  double q = 0.5;  // in (0, 1)
};

// --- The losses. Each returns the reduced value (0 for kNone). r = p - y.
// Mean squared error. l = r^2; dl/dp = 2 r.
template <typename T> double Mse(const Call<T>& call, const MseOptions& = {});
// Mean absolute error. l = |r|; dl/dp = sign(r) (0 at r = 0).
template <typename T> double Mae(const Call<T>& call, const MaeOptions& = {});
// Huber. l = r^2/2 if |r| <= delta else delta (|r| - delta/2);
// dl/dp = clip(r, -delta, delta).
template <typename T> double Huber(const Call<T>& call, const HuberOptions& = {});
// Smooth L1 (PyTorch). l = r^2 / (2 beta) if |r| < beta else |r| - beta/2;
// beta = 0 gives |r|. dl/dp = r / beta if |r| < beta else sign(r).
template <typename T> double SmoothL1(const Call<T>& call, const SmoothL1Options& = {});
// Log-cosh. l = log(cosh(r)), finite for every finite r; dl/dp = tanh(r).
template <typename T> double LogCosh(const Call<T>& call, const LogCoshOptions& = {});
// Mean squared log error. l = (log1p(p) - log1p(y))^2;
// dl/dp = 2 (log1p(p) - log1p(y)) / (1 + p). Inputs below -1 give NaN.
template <typename T> double Msle(const Call<T>& call, const MsleOptions& = {});
// Mean absolute percentage error (a fraction, as scikit-learn).
// l = |r| / max(|y|, eps); dl/dp = sign(r) / max(|y|, eps).
template <typename T> double Mape(const Call<T>& call, const MapeOptions& = {});
// Poisson negative log-likelihood (PyTorch's poisson_nll_loss).
// log_input: l = exp(p) - y p, dl/dp = exp(p) - y;
// else:      l = p - y log(p + eps), dl/dp = 1 - y / (p + eps);
// full adds the Stirling term y log y - y + log(2 pi y)/2 where y > 1.
template <typename T> double PoissonNll(const Call<T>& call, const PoissonNllOptions& = {});
// Quantile (pinball). l = max(q (y - p), (q - 1)(y - p));
// dl/dp = -q if y > p, 1 - q if y < p, 0 if y == p.
template <typename T> double Quantile(const Call<T>& call, const QuantileOptions& = {});

// --- Classification: binary (elementwise) losses. ---------------------------
// y_true holds targets in [0, 1] (checked: a value outside is an Error; NaN is
// not, it propagates). Label smoothing replaces y by y (1 - ls) + ls / 2.
// sp(z) = log(1 + exp(z)) computed stably, sig(z) the logistic sigmoid.
struct BinaryCrossEntropyOptions {
  bool from_logits = false;
  double eps = 1e-7;            // in (0, 0.5): probabilities are clipped to [eps, 1 - eps]
  double pos_weight = 1.0;      // > 0 weight of the positive term (PyTorch's pos_weight)
  double label_smoothing = 0.0;  // in [0, 1)
};
struct BinaryFocalOptions {
  double alpha = 0.25;  // in [0, 1]; used when has_alpha
  bool has_alpha = true;
  double gamma = 2.0;  // >= 0
  bool from_logits = false;
  double eps = 1e-7;
  double label_smoothing = 0.0;
};
struct HingeOptions {};
struct SquaredHingeOptions {};
struct SoftMarginOptions {};

// Binary cross-entropy. Logits x (PyTorch's BCEWithLogits, stable):
//   l = pw y sp(-x) + (1 - y) sp(x), dl/dx = -pw y sig(-x) + (1 - y) sig(x);
// a term whose coefficient is exactly 0 is 0 even against x = +-inf.
// Probabilities p (Keras): pc = clip(p, eps, 1 - eps),
//   l = -(pw y log pc + (1 - y) log(1 - pc)), dl/dp = -pw y / pc + (1 - y) / (1 - pc)
// where eps <= p <= 1 - eps, and 0 where the clip is active.
template <typename T>
double BinaryCrossEntropy(const Call<T>& call, const BinaryCrossEntropyOptions& = {});
// The same with a per-element pos_weight array broadcast to y_pred (options'
// scalar pos_weight is then ignored). pos_weight values are not checked.
template <typename T>
double BinaryCrossEntropy(const Call<T>& call, const View<const T>& pos_weight,
                          const BinaryCrossEntropyOptions& = {});
// Sigmoid focal loss (torchvision on logits; Keras on probabilities):
// l = alpha_t ce (1 - pt)^gamma with pt = p y + (1 - p)(1 - y),
// alpha_t = alpha y + (1 - alpha)(1 - y) (1 without has_alpha), ce the BCE above.
template <typename T>
double BinaryFocal(const Call<T>& call, const BinaryFocalOptions& = {});
// Hinge on labels in {-1, 1} (a label 0 counts as -1): l = max(0, 1 - y p).
template <typename T> double Hinge(const Call<T>& call, const HingeOptions& = {});
// l = max(0, 1 - y p)^2, same labels.
template <typename T>
double SquaredHinge(const Call<T>& call, const SquaredHingeOptions& = {});
// PyTorch's SoftMarginLoss: l = log(1 + exp(-y p)).
template <typename T> double SoftMargin(const Call<T>& call, const SoftMarginOptions& = {});

// --- Classification: losses over a class axis. --------------------------------
// y_pred has at least one dimension; `axis` (negative counts from the end)
// is the class axis of length C >= 1. The other dimensions are the rows
// (their shape R is y_pred's shape without the axis): each row has one loss
// l_r. Dense losses take a Call<T> whose y_true has y_pred's shape; label
// losses take a LabelCall<T> whose labels have shape R. In both, `weights`
// broadcast to R, `losses` (kNone) has shape R and `grad` y_pred's shape.
// kMean divides by D = sum of the row weights (the number of rows without
// weights) unless a loss says otherwise; a mean over nothing is NaN with a
// zero gradient.
template <typename T>
struct LabelCall {
  View<const int64_t> labels;  // in [0, C), or ignore_index where allowed
  View<const T> y_pred;
  View<const T> weights;
  bool has_weights = false;
  View<const T> class_weights;  // rank 1, length C
  bool has_class_weights = false;
  Reduction reduction = Reduction::kMean;
  View<T> grad;
  bool has_grad = false;
  View<T> losses;
  bool has_losses = false;
};

struct CategoricalCrossEntropyOptions {
  bool from_logits = false;
  double label_smoothing = 0.0;  // y' = y (1 - ls) + ls / C
  double eps = 1e-7;             // probabilities: q = clip(p / sum(p), eps, 1 - eps)
  int axis = -1;
};
struct SparseCategoricalCrossEntropyOptions {
  bool from_logits = false;
  int64_t ignore_index = -100;
  bool has_ignore_index = false;
  double label_smoothing = 0.0;
  double eps = 1e-7;
  int axis = -1;
};
struct CategoricalFocalOptions {
  double alpha = 0.25;
  bool has_alpha = true;
  double gamma = 2.0;
  bool from_logits = false;
  double label_smoothing = 0.0;
  double eps = 1e-7;
  int axis = -1;
};
struct CategoricalHingeOptions {
  int axis = -1;
};
struct MultiMarginOptions {
  int p = 1;  // 1 or 2
  double margin = 1.0;
  int axis = -1;
};
struct NllOptions {
  int64_t ignore_index = -100;
  bool has_ignore_index = false;
  int axis = -1;
};
struct KlDivergenceOptions {
  bool log_input = false;
  bool log_target = false;
  int axis = -1;
};
struct JensenShannonOptions {
  double beta = 0.5;  // in [0, 1]
  bool log_input = false;
  int axis = -1;
};

// Categorical cross-entropy, dense targets. Logits: l = sum_c y'_c (lse(x) - x_c)
// computed as (max - x_c) + log sum exp(x - max); dl/dx = softmax(x) sum(y') - y'.
// Probabilities (Keras): l = -sum_c y'_c log q_c, q = clip(p / sum(p), eps, 1 - eps),
// the exact gradient through the normalisation (0 through an active clip).
template <typename T>
double CategoricalCrossEntropy(const Call<T>& call, const CategoricalCrossEntropyOptions& = {});
// Sparse categorical cross-entropy (PyTorch's cross_entropy with weight,
// ignore_index and label_smoothing): with t the label and w the class weights,
// l = (1 - ls) w_t (-log q_t) + (ls / C) sum_c w_c (-log q_c); the mean divides
// by the sum over non-ignored rows of s_r w_t.
template <typename T>
double SparseCategoricalCrossEntropy(const LabelCall<T>& call,
                                     const SparseCategoricalCrossEntropyOptions& = {});
// Softmax focal loss (Keras): l = -sum_c alpha y'_c (1 - q_c)^gamma log q_c.
template <typename T>
double CategoricalFocal(const Call<T>& call, const CategoricalFocalOptions& = {});
// Keras categorical hinge: l = max(0, max_c (1 - y_c) p_c - sum_c y_c p_c + 1).
template <typename T>
double CategoricalHinge(const Call<T>& call, const CategoricalHingeOptions& = {});
// PyTorch's MultiMarginLoss: l = sum_{c != t} w_t max(0, margin - x_t + x_c)^p / C;
// the mean divides by the row count (weights), not by the class weights.
template <typename T>
double MultiMargin(const LabelCall<T>& call, const MultiMarginOptions& = {});
// Negative log-likelihood of log-probabilities: l = -w_t x_t; mean as sparse CE.
template <typename T>
double Nll(const LabelCall<T>& call, const NllOptions& = {});
// KL(y_true || y_pred) per row: sum_c t_c (log t_c - log p_c); kMean is the
// mean over rows (PyTorch's "batchmean"). Zero targets contribute 0.
template <typename T>
double KlDivergence(const Call<T>& call, const KlDivergenceOptions& = {});
// Generalized Jensen-Shannon divergence (Liger-Kernel's JSD) between P = y_true
// and Q = y_pred: beta KL(P || M) + (1 - beta) KL(Q || M), M = beta P + (1 - beta) Q;
// beta = 0 is KL(P || Q) and beta = 1 is KL(Q || P).
template <typename T>
double JensenShannon(const Call<T>& call, const JensenShannonOptions& = {});

// --- Segmentation: overlap scores over a set of reduced axes. -----------------
// The score of a region is computed from three sums over it, with
// p = y_pred (or sigmoid(y_pred) with from_logits):
//   I = sum y p,  Sy = sum y,  Sp = sum p   (squared: Sy = sum y^2, Sp = sum p^2).
// `all_axes` reduces every axis (one score for the whole array, Keras'
// convention); otherwise `axes` lists the reduced axes (negative counts from
// the end; {} gives one score per element). The losses (kNone), weights and
// the mean are over the remaining axes: y_pred's shape without `axes`.
// The value reads the inputs once; the gradient needs the sums first, so it
// reads them a second time.
struct OverlapOptions {
  double smooth = 1e-6;  // >= 0
  bool all_axes = true;
  std::vector<int> axes;
  bool squared = false;
  bool from_logits = false;
};
struct DiceOptions : OverlapOptions {};
struct JaccardOptions : OverlapOptions {};
struct TverskyOptions : OverlapOptions {
  double alpha = 0.5;  // >= 0, weight of the false positives Sp - I
  double beta = 0.5;   // >= 0, weight of the false negatives Sy - I
};
struct FocalTverskyOptions : TverskyOptions {
  double gamma = 0.75;  // > 0
};
// l = 1 - (2 I + smooth) / (Sy + Sp + smooth).
template <typename T> double Dice(const Call<T>& call, const DiceOptions& = {});
// l = 1 - (I + smooth) / (Sy + Sp - I + smooth).
template <typename T> double Jaccard(const Call<T>& call, const JaccardOptions& = {});
// TI = (I + smooth) / (I + alpha (Sp - I) + beta (Sy - I) + smooth); l = 1 - TI.
template <typename T> double Tversky(const Call<T>& call, const TverskyOptions& = {});
// l = (1 - TI)^gamma (gradient 0 where 1 - TI = 0).
template <typename T>
double FocalTversky(const Call<T>& call, const FocalTverskyOptions& = {});

// --- Detection: losses of boxes (x1, y1, x2, y2) along a last axis of 4. -----
// y_true and y_pred have the same shape (..., 4); the losses (kNone), weights
// and the mean are over (...). torchvision's definitions, with eps:
//   kIou   l = 1 - inter / (union + eps)
//   kGiou  + (area_c - union) / (area_c + eps), area_c the enclosing box's area
//   kDiou  + rho^2 / (diag_c^2 + eps), rho the distance of the centres
//   kCiou  DIoU + alpha v, v = 4/pi^2 (atan(wg/hg) - atan(w/h))^2,
//          alpha = v / (1 - iou + v + eps) held constant in the gradient.
// The gradient is with respect to y_pred, with autograd's conventions (a tie
// of min/max passes half to each side; nothing through an empty intersection).
// Degenerate boxes (zero or negative width/height) give finite values and
// gradients: in atan(w/h) a height with |h| < eps counts as eps (h's sign).
// Errors call y_true and y_pred boxes_true and boxes_pred.
enum class BoxIouKind { kIou, kGiou, kDiou, kCiou };
struct BoxIouOptions {
  BoxIouKind kind = BoxIouKind::kIou;
  double eps = 1e-7;  // >= 0
};
template <typename T> double BoxIou(const Call<T>& call, const BoxIouOptions& = {});

// --- Metric learning: losses of rows (vectors along one axis). ---------------
// Cosine similarity loss: l = 1 - cos, cos = sum(y p) / (max(|y|, eps) max(|p|, eps))
// clipped to [-1, 1], one per row along `axis` (Keras' loss is -cos).
struct CosineSimilarityOptions {
  int axis = -1;
  double eps = 1e-8;  // >= 0
};
template <typename T>
double CosineSimilarity(const Call<T>& call, const CosineSimilarityOptions& = {});

// Several differentiable inputs of one shape, rows along the last axis
// (inputs of rank 0 are an Error). `target` has the rows' shape (the inputs'
// shape without the last axis) for the row losses, the inputs' shape for
// MarginRanking. grads[k] (optional each) is d(reduced value)/d inputs[k];
// losses, weights and the mean are over the rows (elements for MarginRanking).
template <typename T>
struct MultiCall {
  static constexpr int kMaxInputs = 3;
  View<const T> inputs[kMaxInputs];
  View<const T> target;
  View<const T> weights;
  bool has_weights = false;
  Reduction reduction = Reduction::kMean;
  View<T> grads[kMaxInputs];
  bool has_grads[kMaxInputs] = {};
  View<T> losses;
  bool has_losses = false;
};

struct CosineEmbeddingOptions {
  double margin = 0.0;  // in [-1, 1]
};
// PyTorch's cosine_embedding_loss of inputs {x1, x2}, target y in {-1, 1}
// (anything else is an Error): cos = sum(x1 x2) / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12)),
// l = 1 - cos where y = 1, max(0, cos - margin) where y = -1.
template <typename T>
double CosineEmbedding(const MultiCall<T>& call, const CosineEmbeddingOptions& = {});

struct TripletMarginOptions {
  double margin = 1.0;  // >= 0
  double p = 2.0;       // > 0
  double eps = 1e-6;    // >= 0
  bool swap = false;
  bool squared = false;  // d = sum (a - b)^2 (no eps); needs p = 2
};
// PyTorch's triplet_margin_loss of inputs {anchor, positive, negative}:
// d(a, b) = |a - b + eps|_p, l = max(0, d(a, p) - d(a, n) + margin); swap uses
// min(d(a, n), d(p, n)). No target.
template <typename T>
double TripletMargin(const MultiCall<T>& call, const TripletMarginOptions& = {});

struct ContrastiveOptions {
  double margin = 1.0;  // >= 0
  double eps = 1e-6;    // >= 0, ContrastivePairs only
};
// On given distances: y_true = y in [0, 1], y_pred = d (named "distance" in
// errors): l = y d^2 + (1 - y) max(0, margin - d)^2.
template <typename T>
double Contrastive(const Call<T>& call, const ContrastiveOptions& = {});
// The same on d = |x1 - x2 + eps|_2 of the rows of inputs {x1, x2}; target y
// of the rows' shape, in [0, 1].
template <typename T>
double ContrastivePairs(const MultiCall<T>& call, const ContrastiveOptions& = {});

struct MarginRankingOptions {
  double margin = 0.0;  // >= 0
};
// PyTorch's margin_ranking_loss, elementwise on inputs {x1, x2} and target y:
// l = max(0, -y (x1 - x2) + margin).
template <typename T>
double MarginRanking(const MultiCall<T>& call, const MarginRankingOptions& = {});

// --- Ranking. ------------------------------------------------------------------
enum class PairNormalization { kAllPairs, kOrderedPairs };
struct PairwiseRankingOptions {
  double margin = 1.0;  // >= 0
  PairNormalization normalization = PairNormalization::kAllPairs;
};
// y_true = relevance, y_pred = scores (any shape, taken flat): the sum over
// pairs with relevance_i > relevance_j (in the same group, when `groups` is
// given: integer ids of the same shape) of max(0, margin - (s_i - s_j)).
// kMean divides by the number of unordered pairs n (n - 1) / 2 (summed over
// groups), or by the number of ordered pairs counted. O(n log n). kNone and
// weights are an Error.
template <typename T>
double PairwiseRanking(const Call<T>& call, const View<const int64_t>* groups,
                       const PairwiseRankingOptions& = {});

// --- Adversarial losses and penalties: losses of scores alone. -----------------
template <typename T>
struct ScoreCall {
  View<const T> scores;
  View<const T> weights;  // broadcast to scores
  bool has_weights = false;
  View<T> grad;
  bool has_grad = false;
  View<T> losses;  // kNone
  bool has_losses = false;
};
// softplus(-real) + softplus(fake), each reduced over its own array (a
// discriminator's BCE against labels 1 and 0). Returns the sum. Both calls
// are checked before either runs: an Error leaves every output untouched.
template <typename T>
double GanDiscriminator(const ScoreCall<T>& real, const ScoreCall<T>& fake, Reduction reduction);
// softplus(-fake) (non-saturating), or log(1 - sigmoid(fake)) = -softplus(fake).
template <typename T>
double GanGenerator(const ScoreCall<T>& fake, Reduction reduction, bool saturating = false);
// R(fake) - R(real), R the reduction.
template <typename T>
double WassersteinCritic(const ScoreCall<T>& real, const ScoreCall<T>& fake, Reduction reduction);
// -R(fake).
template <typename T>
double WassersteinGenerator(const ScoreCall<T>& fake, Reduction reduction);
// (|g_i|_2 - target)^2 for each sample i (axis 0; the other axes flattened);
// losses and weights of shape (N,). Gradient 2 (|g_i| - target) g_i / |g_i|, 0 at g_i = 0.
template <typename T>
double GradientPenalty(const ScoreCall<T>& gradients, Reduction reduction, double target = 1.0);
// lam * sum(w^2) of one array; grad (optional) = 2 lam w.
template <typename T>
double L2Penalty(const View<const T>& w, double lam, const View<T>* grad = nullptr);

// --- Fused sums of elementwise losses. --------------------------------------
// sum_k c_k loss_k(y_true, y_pred) for elementwise losses with the same
// inputs, in one pass: each element is read once and the gradient written
// once. Add a term per loss (its options' type names the loss):
//   fastloss::ElementwiseCombination c;
//   c.Add(0.5, fastloss::MseOptions{}).Add(0.5, fastloss::HuberOptions{2.0});
//   double v = fastloss::Combined(call, c);
// Options are checked by Add (an Error, as the loss would raise).
class ElementwiseCombination {
 public:
  ElementwiseCombination();
  ~ElementwiseCombination();
  ElementwiseCombination(const ElementwiseCombination&);
  ElementwiseCombination& operator=(const ElementwiseCombination&);
  ElementwiseCombination& Add(double coef, const MseOptions& o);
  ElementwiseCombination& Add(double coef, const MaeOptions& o);
  ElementwiseCombination& Add(double coef, const HuberOptions& o);
  ElementwiseCombination& Add(double coef, const SmoothL1Options& o);
  ElementwiseCombination& Add(double coef, const LogCoshOptions& o);
  ElementwiseCombination& Add(double coef, const MsleOptions& o);
  ElementwiseCombination& Add(double coef, const MapeOptions& o);
  ElementwiseCombination& Add(double coef, const PoissonNllOptions& o);
  ElementwiseCombination& Add(double coef, const QuantileOptions& o);
  ElementwiseCombination& Add(double coef, const BinaryCrossEntropyOptions& o);
  ElementwiseCombination& Add(double coef, const BinaryFocalOptions& o);
  ElementwiseCombination& Add(double coef, const HingeOptions& o);
  ElementwiseCombination& Add(double coef, const SquaredHingeOptions& o);
  ElementwiseCombination& Add(double coef, const SoftMarginOptions& o);
  ElementwiseCombination& Add(double coef, const ContrastiveOptions& o);
  int size() const;
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  Impl* impl_;
};
template <typename T>
double Combined(const Call<T>& call, const ElementwiseCombination& terms);

// --- Runtime configuration. ---
// Threads used by large calls (the caller's thread included). n >= 1.
void SetNumThreads(int n);
int GetNumThreads();
// Name of the SIMD instruction set the kernels dispatch to ("AVX2", ...).
std::string SimdTarget();

// Test hooks. The targets compiled in and supported by this CPU, best first;
// ForceSimdTarget(name) makes every later call use that one ("" restores the
// best). Forcing is process-wide and not synchronised with calls in flight:
// for tests, not for production.
std::vector<std::string> AvailableSimdTargets();
void ForceSimdTarget(const std::string& name);

}  // namespace fastloss

#endif  // FASTLOSS_FASTLOSS_HPP_
