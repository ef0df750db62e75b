// fastloss._core: the registry's single-input losses as XLA FFI handlers on
// the CPU, for fastloss.jax (jax.ffi.ffi_call).
//
// One handler per registry row, generated from FASTLOSS_LOSSES with the same
// runner the NumPy front door uses (runners.h); the options arrive as FFI
// attributes named as the fields of the row's options struct and are read
// through that struct's field list (Options::Fields), then checked by the
// C++ entry point. fastloss.jax builds the attributes from the options the
// NumPy front door parsed and checked at trace time (_core.resolve_options),
// so a bad option is a Python ValueError/TypeError before anything runs;
// what only the data can say (a label out of range, a weights shape) comes
// back as the FFI call's error with fastloss's message.
//
// The call, as fastloss.jax makes it:
//   operands  y_true, y_pred, then weights, the real-or-array option's
//             array, class_weights -- each present when its "_weights",
//             "_aux", "_class_weights" attribute is true; dense row-major
//             (XLA's default layout), y_true of y_pred's dtype except labels
//             (any integer dtype, widened to int64 here);
//   results   the value (shape (), or the per-item losses' shape with
//             "_reduction" "none"), then the gradient (y_pred's shape) when
//             "_grad" is true; both of y_pred's dtype (float32 or float64);
//   options   an absent attribute is None (optional reals and ints, axis);
//             every other field's attribute is required;
//   batches   under jax.vmap (vmap_method="expand_dims") every operand and
//             result gains leading batch dimensions (1 for an unbatched
//             operand) and "_rank" says y_pred's own rank: the loss runs
//             once per member (Batch, Member).
#include "jax_ffi.h"

#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runners.h"
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include "xla/ffi/api/ffi.h"

namespace fastloss_py {
namespace {

namespace ffi = xla::ffi;
using fastloss::Call;
using fastloss::Reduction;
using fastloss::View;

// The visitor that reads a field from the call's attribute of its name.
struct AttrReader {
  const ffi::Dictionary& attrs;
  const char* loss;

  template <class X>
  X Get(const char* f) const {
    ffi::ErrorOr<X> v = attrs.get<X>(f);
    if (!v.has_value()) {
      throw fastloss::Error(std::string(loss) + ": the FFI call's attribute " + f +
                            " is missing or of the wrong type");
    }
    return *v;
  }
  void Real(const char* f, double& x, fastloss::Check, const char*) const { x = Get<double>(f); }
  void Bool(const char* f, bool& x, const char*) const { x = Get<bool>(f); }
  void Int(const char* f, int& x, const char*) const {
    const int64_t v = Get<int64_t>(f);
    if (v >= (int64_t{1} << 31) || v < -(int64_t{1} << 31)) {
      throw fastloss::Error(std::string(loss) + ": " + f + " is out of range");
    }
    x = static_cast<int>(v);
  }
  void OptionalReal(const char* f, std::optional<double>& x, fastloss::Check,
                    const char*) const {
    x.reset();
    if (attrs.contains(f)) x = Get<double>(f);
  }
  void OptionalInt(const char* f, std::optional<int64_t>& x, const char*) const {
    x.reset();
    if (attrs.contains(f)) x = Get<int64_t>(f);
  }
  void Axes(const char* f, bool& all, std::vector<int>& axes, const char*) const {
    axes.clear();
    all = !attrs.contains(f);
    if (all) return;
    for (int64_t a : Get<ffi::Span<const int64_t>>(f)) axes.push_back(static_cast<int>(a));
  }
  template <class E>
  void Choice(const char* f, E& x, const char* const* choices, const char*) const {
    const std::string_view s = Get<std::string_view>(f);
    for (int i = 0; choices[i]; ++i) {
      if (s == choices[i]) {
        x = static_cast<E>(i);
        return;
      }
    }
    throw fastloss::Error(std::string(loss) + ": " + f + " '" + std::string(s) +
                          "' is not one of its choices");
  }
  // The array, when given, is an operand ("_aux"); the attribute is absent.
  void RealOrArray(const char* f, double& x, fastloss::Check, const char*) const {
    if (attrs.contains(f)) x = Get<double>(f);
  }
  void ClassWeights(const char*, const char*) const {}
  void Groups(const char*, const char*) const {}
};

bool Flag(const ffi::Dictionary& attrs, const char* name) {
  ffi::ErrorOr<bool> v = attrs.get<bool>(name);
  return v.has_value() && *v;
}

// A dense row-major view of an FFI buffer.
template <typename T>
View<T> ViewOf(const char* loss, const char* what, const ffi::AnyBuffer& b) {
  const ffi::AnyBuffer::Dimensions dims = b.dimensions();
  if (dims.size() > static_cast<size_t>(fastloss::kMaxRank)) {
    throw fastloss::Error(std::string(loss) + ": " + what + " has " +
                          std::to_string(dims.size()) + " dimensions, the limit is " +
                          std::to_string(fastloss::kMaxRank));
  }
  View<T> v;
  v.data = static_cast<T*>(b.untyped_data());
  v.rank = static_cast<int>(dims.size());
  int64_t stride = 1;
  for (int k = v.rank - 1; k >= 0; --k) {
    v.shape[k] = dims[k];
    v.strides[k] = stride;
    stride *= dims[k];
  }
  return v;
}

template <typename T>
constexpr ffi::DataType kTypeOf = sizeof(T) == 4 ? ffi::DataType::F32 : ffi::DataType::F64;

const char* TypeName(ffi::DataType t) {
  switch (t) {
    case ffi::DataType::F16: return "float16";
    case ffi::DataType::BF16: return "bfloat16";
    case ffi::DataType::F32: return "float32";
    case ffi::DataType::F64: return "float64";
    case ffi::DataType::PRED: return "bool";
    case ffi::DataType::S8: return "int8";
    case ffi::DataType::S16: return "int16";
    case ffi::DataType::S32: return "int32";
    case ffi::DataType::S64: return "int64";
    case ffi::DataType::U8: return "uint8";
    case ffi::DataType::U16: return "uint16";
    case ffi::DataType::U32: return "uint32";
    case ffi::DataType::U64: return "uint64";
    default: return "an unsupported dtype";
  }
}

template <typename T>
View<const T> Operand(const char* loss, const char* what, const ffi::AnyBuffer& b) {
  if (b.element_type() != kTypeOf<T>) {
    throw fastloss::Error(std::string(loss) + ": " + what + " must be " +
                          TypeName(kTypeOf<T>) + " (y_pred's dtype), got " +
                          TypeName(b.element_type()));
  }
  return ViewOf<const T>(loss, what, b);
}

// Integer labels as int64 (a copy into `store` unless they are int64).
template <typename I>
void Widen(const ffi::AnyBuffer& b, std::vector<int64_t>& store, bool check_unsigned) {
  const I* p = static_cast<const I*>(b.untyped_data());
  const size_t n = b.element_count();
  store.resize(n);
  for (size_t i = 0; i < n; ++i) {
    // uint64 labels past int64's range become int64's minimum: an invalid
    // label the entry point reports (never a class or an ignore_index).
    store[i] = check_unsigned && static_cast<uint64_t>(p[i]) > 0x7fffffffffffffffULL
                   ? std::numeric_limits<int64_t>::min()
                   : static_cast<int64_t>(p[i]);
  }
}
View<const int64_t> Labels(const char* loss, const ffi::AnyBuffer& b,
                           std::vector<int64_t>& store) {
  View<const int64_t> v = ViewOf<const int64_t>(loss, "labels", b);
  switch (b.element_type()) {
    case ffi::DataType::S64: return v;
    case ffi::DataType::S32: Widen<int32_t>(b, store, false); break;
    case ffi::DataType::S16: Widen<int16_t>(b, store, false); break;
    case ffi::DataType::S8: Widen<int8_t>(b, store, false); break;
    case ffi::DataType::U8: Widen<uint8_t>(b, store, false); break;
    case ffi::DataType::U16: Widen<uint16_t>(b, store, false); break;
    case ffi::DataType::U32: Widen<uint32_t>(b, store, false); break;
    case ffi::DataType::U64: Widen<uint64_t>(b, store, true); break;
    default:
      throw fastloss::Error(std::string(loss) + ": labels must be integers, got " +
                            TypeName(b.element_type()));
  }
  v.data = store.data();
  return v;
}

Reduction ReductionOf(const char* loss, std::string_view r) {
  if (r == "mean") return Reduction::kMean;
  if (r == "sum") return Reduction::kSum;
  if (r == "none") return Reduction::kNone;
  throw fastloss::Error(std::string(loss) + ": reduction must be 'mean', 'sum' or 'none'");
}

// Lets the kernel back a large result buffer with transparent huge pages,
// as NumPy does for its own arrays (madvise(MADV_HUGEPAGE) from 4 MiB): XLA
// hands over fresh, untouched memory, and with the system's THP setting at
// "madvise" the first writes would otherwise fault it in 4 KiB at a time
// (a 64 MiB gradient: ~15 ms of page faults, more than the kernel itself).
void AdviseHugePages(const ffi::AnyBuffer& b) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const size_t bytes = b.size_bytes();
  if (bytes < (size_t{4} << 20)) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(b.untyped_data());
  const uintptr_t begin = (p + 4095) & ~uintptr_t{4095};
  if (begin >= p + bytes) return;
  madvise(reinterpret_cast<void*>(begin), p + bytes - begin, MADV_HUGEPAGE);  // advice only
#else
  (void)b;
#endif
}

template <typename T>
ffi::AnyBuffer Result(const char* loss, ffi::RemainingRets rets, size_t i) {
  ffi::ErrorOr<ffi::Result<ffi::AnyBuffer>> r = rets.get<ffi::AnyBuffer>(i);
  if (!r.has_value()) {
    throw fastloss::Error(std::string(loss) + ": the FFI call has too few results");
  }
  ffi::AnyBuffer b = **r;
  if (b.element_type() != kTypeOf<T>) {
    throw fastloss::Error(std::string(loss) + ": the FFI call's results must be of y_pred's "
                          "dtype");
  }
  AdviseHugePages(b);
  return b;
}

// --- Batches (jax.vmap): the call's operands and results carry leading
// batch dimensions (ffi_call's vmap_method="expand_dims": an unbatched
// operand has them of size 1), "_rank" is y_pred's rank without them. The
// handler runs the loss once per member, in order, on views into the
// buffers: each member's value, losses and gradient are those of its own
// call, bit for bit, with no XLA loop around the FFI call.
struct Batch {
  int nb = 0;                               // batch dimensions
  int64_t shape[fastloss::kMaxRank] = {};   // their extents
  int64_t size = 1;                         // members
};

// The batch of a call: y_pred's rank less "_rank"; the extents are the
// results' (always batched), checked against every operand's (1 or equal).
Batch BatchOf(const char* loss, const ffi::Dictionary& attrs, int pred_rank,
              const ffi::AnyBuffer& first_result) {
  Batch b;
  ffi::ErrorOr<int64_t> r = attrs.get<int64_t>("_rank");
  if (!r.has_value()) return b;
  b.nb = pred_rank - static_cast<int>(*r);
  const ffi::AnyBuffer::Dimensions dims = first_result.dimensions();
  if (b.nb < 0 || static_cast<size_t>(b.nb) > dims.size()) {
    throw fastloss::Error(std::string(loss) + ": the FFI call's batch dimensions do not match "
                          "its attributes");
  }
  for (int k = 0; k < b.nb; ++k) {
    b.shape[k] = dims[k];
    b.size *= dims[k];
  }
  return b;
}

// Member m (row-major over the batch) of a view whose first nb dimensions
// are batch dimensions of extent batch.shape[k] or 1 (broadcast).
template <typename T>
View<T> Member(const char* loss, const char* what, const View<T>& full, const Batch& batch,
               int64_t m) {
  if (full.rank < batch.nb) {
    throw fastloss::Error(std::string(loss) + ": " + what + " lacks the call's batch dimensions");
  }
  View<T> v;
  v.rank = full.rank - batch.nb;
  for (int k = 0; k < v.rank; ++k) {
    v.shape[k] = full.shape[batch.nb + k];
    v.strides[k] = full.strides[batch.nb + k];
  }
  int64_t offset = 0;
  for (int k = batch.nb - 1; k >= 0; --k) {
    const int64_t i = m % batch.shape[k];
    m /= batch.shape[k];
    if (full.shape[k] == batch.shape[k]) {
      offset += i * full.strides[k];
    } else if (full.shape[k] != 1) {
      throw fastloss::Error(std::string(loss) + ": " + what + "'s batch dimensions do not "
                            "match the call's");
    }
  }
  v.data = full.data + offset;
  return v;
}

// Whether a view carries the whole batch (no broadcast batch dimension).
template <typename T>
bool Batched(const View<T>& v, const Batch& batch) {
  if (v.rank < batch.nb) return false;
  for (int k = 0; k < batch.nb; ++k) {
    if (v.shape[k] != batch.shape[k]) return false;
  }
  return true;
}
template <typename T, typename U>
bool SameExtents(const View<T>& a, const View<U>& b) {
  if (a.rank != b.rank) return false;
  for (int k = 0; k < a.rank; ++k) {
    if (a.shape[k] != b.shape[k]) return false;
  }
  return true;
}
// A dense view as one axis of its elements in C order.
template <typename T>
View<T> Flat(const View<T>& v) {
  View<T> f;
  f.data = v.data;
  f.rank = 1;
  f.shape[0] = v.size();
  f.strides[0] = 1;
  return f;
}

template <typename T>
void SameShape(const char* loss, const char* what, const View<T>& v, int rank,
               const int64_t* shape) {
  bool same = v.rank == rank;
  for (int k = 0; same && k < rank; ++k) same = v.shape[k] == shape[k];
  if (!same) {
    throw fastloss::Error(std::string(loss) + ": the FFI call's " + what +
                          " result has the wrong shape");
  }
}

template <class O, Driver D, class Runner, typename T>
void Run(const char* loss, const O& o, const ffi::RemainingArgs& args,
         const ffi::RemainingRets& rets, const ffi::Dictionary& attrs) {
  const bool want_grad = Flag(attrs, "_grad");
  const bool has_weights = Flag(attrs, "_weights"), has_aux = Flag(attrs, "_aux"),
             has_class_weights = Flag(attrs, "_class_weights");
  const size_t n_args = 2 + has_weights + has_aux + has_class_weights;
  if (args.size() != n_args || rets.size() != 1u + want_grad) {
    throw fastloss::Error(std::string(loss) + ": the FFI call has " +
                          std::to_string(args.size()) + " operands and " +
                          std::to_string(rets.size()) + " results, its attributes say " +
                          std::to_string(n_args) + " and " + std::to_string(1 + want_grad));
  }
  auto arg = [&](size_t i) { return *args.get<ffi::AnyBuffer>(i); };
  std::vector<int64_t> label_store;
  const View<const T> y_pred = Operand<T>(loss, "y_pred", arg(1));
  View<const T> y_true;
  View<const int64_t> labels;
  if constexpr (D == Driver::kLabelRows) {
    labels = Labels(loss, arg(0), label_store);
  } else {
    y_true = Operand<T>(loss, "y_true", arg(0));
  }
  const Reduction reduction = ReductionOf(loss, *attrs.get<std::string_view>("_reduction"));
  size_t next = 2;
  View<const T> weights, aux, class_weights;
  if (has_weights) weights = Operand<T>(loss, "weights", arg(next++));
  if (has_aux) aux = Operand<T>(loss, "the array option", arg(next++));
  if (has_class_weights) class_weights = Operand<T>(loss, "class_weights", arg(next++));
  const ffi::AnyBuffer value = Result<T>(loss, rets, 0);
  const View<T> values = ViewOf<T>(loss, "value", value);
  View<T> grads;
  if (want_grad) grads = ViewOf<T>(loss, "grad", Result<T>(loss, rets, 1));
  const Batch batch = BatchOf(loss, attrs, y_pred.rank, value);
  if (reduction != Reduction::kNone && values.rank != batch.nb) {
    throw fastloss::Error(std::string(loss) + ": the FFI call's value result must have one "
                          "element per batch member");
  }

  if constexpr (D == Driver::kElementwise) {
    if (reduction != Reduction::kNone && batch.size > 1 && !has_aux &&
        Batched(y_pred, batch) && Batched(y_true, batch) &&
        (!has_weights || (Batched(weights, batch) && SameExtents(weights, y_pred)))) {
      // Every member's elements are contiguous and in order: one pass of the
      // elementwise driver with one segment per member (Call::segments),
      // whose values and gradients are each segment's own call's bits.
      const int64_t n = y_pred.size(), per = n / batch.size;
      std::vector<int64_t> offsets(static_cast<size_t>(batch.size) + 1);
      for (int64_t m = 0; m <= batch.size; ++m) offsets[static_cast<size_t>(m)] = m * per;
      fastloss::SegmentOutputs<T> out;
      out.offsets = View<const int64_t>::Contiguous(offsets.data(), {offsets.size()});
      out.values = static_cast<T*>(value.untyped_data());
      Call<T> call;
      call.y_pred = Flat(y_pred);
      call.y_true = Flat(y_true);
      if (has_weights) call.weights = Flat(weights);
      if (want_grad) {
        SameShape(loss, "gradient", grads, y_pred.rank, y_pred.shape);
        call.grad = Flat(grads);
      }
      call.reduction = reduction;
      call.segments = &out;
      Runner::template Run<T>(call, o, nullptr);
      return;
    }
  }
  for (int64_t m = 0; m < batch.size; ++m) {
    CallOf<D, T> call;
    call.y_pred = Member(loss, "y_pred", y_pred, batch, m);
    if constexpr (D == Driver::kLabelRows) {
      call.labels = Member(loss, "labels", labels, batch, m);
    } else {
      call.y_true = Member(loss, "y_true", y_true, batch, m);
    }
    call.reduction = reduction;
    if (has_weights) call.weights = Member(loss, "weights", weights, batch, m);
    View<const T> aux_m;
    if (has_aux) aux_m = Member(loss, "the array option", aux, batch, m);
    if (has_class_weights) {
      call.class_weights = Member(loss, "class_weights", class_weights, batch, m);
    }
    if (reduction == Reduction::kNone) {
      // The losses' shape is the one the NumPy front door gives
      // (LossesShape); a result of another shape is refused before anything
      // is written.
      int64_t shape[fastloss::kMaxRank];
      const int rank = LossesShape<D>(call.y_pred.rank, call.y_pred.shape, o, shape);
      const View<T> losses = Member(loss, "losses", values, batch, m);
      SameShape(loss, "losses", losses, rank, shape);
      call.losses = losses;
    }
    if (want_grad) {
      const View<T> grad = Member(loss, "grad", grads, batch, m);
      SameShape(loss, "gradient", grad, call.y_pred.rank, call.y_pred.shape);
      call.grad = grad;
    }
    const double v = Runner::template Run<T>(call, o, has_aux ? &aux_m : nullptr);
    if (reduction != Reduction::kNone) static_cast<T*>(value.untyped_data())[m] = static_cast<T>(v);
  }
}

// Runs `body`, its exceptions as the FFI call's error: fastloss::Error (a
// bad input) as InvalidArgument with fastloss's message.
template <class F>
ffi::Error Guarded(const char* loss, F&& body) {
  try {
    body();
  } catch (const fastloss::Error& e) {
    return ffi::Error::InvalidArgument(e.what());
  } catch (const std::bad_alloc&) {
    return ffi::Error(ffi::ErrorCode::kResourceExhausted, std::string(loss) + ": out of memory");
  } catch (const std::exception& e) {
    return ffi::Error::Internal(std::string(loss) + ": " + e.what());
  }
  return ffi::Error::Success();
}

template <class O, Driver D, class Runner>
ffi::Error Handle(const char* loss, ffi::RemainingArgs args, ffi::RemainingRets rets,
                  ffi::Dictionary attrs) {
  return Guarded(loss, [&] {
    O o{};
    O::Fields(o, AttrReader{attrs, loss});
    if (args.size() < 2) throw fastloss::Error(std::string(loss) + ": y_true and y_pred are needed");
    const ffi::DataType t = args.get<ffi::AnyBuffer>(1)->element_type();
    if (t == ffi::DataType::F32) {
      Run<O, D, Runner, float>(loss, o, args, rets, attrs);
    } else if (t == ffi::DataType::F64) {
      Run<O, D, Runner, double>(loss, o, args, rets, attrs);
    } else {
      throw fastloss::Error(std::string(loss) + ": y_pred must be float32 or float64, got " +
                            TypeName(t));
    }
  });
}

// An XLA_FFI_Handler (the C ABI jax.ffi takes) of Impl::Call(args, rets,
// attrs): the operands, results and attributes as they come.
template <class Impl>
XLA_FFI_Error* Handler(XLA_FFI_CallFrame* frame) {
  static auto* handler = ffi::Ffi::Bind()
                             .RemainingArgs()
                             .RemainingRets()
                             .Attrs<ffi::Dictionary>()
                             .To(&Impl::Call)
                             .release();
  return handler->Call(frame);
}

// One handler per row. The options are checked by the entry point, as every
// call's are.
#define FASTLOSS_JAX_HANDLER(Name, name, driver, aliases, true_name, pred_name)              \
  struct Jax##Name {                                                                        \
    static ffi::Error Call(ffi::RemainingArgs a, ffi::RemainingRets r, ffi::Dictionary d) { \
      return Handle<fastloss::Name##Options, FASTLOSS_PY_DRIVER_##driver, Run##Name>(#name, \
                                                                                    a, r, d); \
    }                                                                                       \
  };
FASTLOSS_LOSSES(FASTLOSS_JAX_HANDLER)
#undef FASTLOSS_JAX_HANDLER

// --- The losses of several inputs (FASTLOSS_MULTI_LOSSES): the kinds with
// one value per element, row, sample or score (Rows, Elements, Samples,
// Scores, ScorePair). Operands: the differentiable inputs in the row's
// argument order, then its target (where it has one), then "_n_weights"
// weights arrays (two for ScorePair: real, fake); results: the value (or
// the losses: "none"), then one gradient per input when "_grad" is true.

template <MultiKind K>
constexpr bool kOnJax = K == MultiKind::kRows || K == MultiKind::kElements ||
                        K == MultiKind::kSamples || K == MultiKind::kScores ||
                        K == MultiKind::kScorePair;


template <class O, MultiKind K, class Runner, typename T>
void RunMulti(const char* loss, const O& o, size_t n_inputs, bool has_target,
              const ffi::RemainingArgs& args, const ffi::RemainingRets& rets,
              const ffi::Dictionary& attrs) {
  const bool want_grad = Flag(attrs, "_grad");
  ffi::ErrorOr<int64_t> nw = attrs.get<int64_t>("_n_weights");
  const size_t n_weights = nw.has_value() ? static_cast<size_t>(*nw) : 0;
  const size_t n_args = n_inputs + has_target + n_weights;
  if (args.size() != n_args || rets.size() != 1 + (want_grad ? n_inputs : 0) ||
      n_weights > (K == MultiKind::kScorePair ? 2u : 1u)) {
    throw fastloss::Error(std::string(loss) + ": the FFI call's operands and results do not "
                          "match its attributes");
  }
  auto arg = [&](size_t i) { return *args.get<ffi::AnyBuffer>(i); };
  View<const T> inputs[3];
  for (size_t k = 0; k < n_inputs; ++k) inputs[k] = Operand<T>(loss, "an input", arg(k));
  View<const T> target;
  if (has_target) target = Operand<T>(loss, "the target", arg(n_inputs));
  View<const T> weights[2];
  for (size_t k = 0; k < n_weights; ++k) {
    weights[k] = Operand<T>(loss, "weights", arg(n_inputs + has_target + k));
  }
  const Reduction red = ReductionOf(loss, *attrs.get<std::string_view>("_reduction"));
  const bool none = red == Reduction::kNone;
  if constexpr (K == MultiKind::kScorePair) {
    if (none) {
      throw fastloss::Error(std::string(loss) + ": reduction 'none' gives one array per "
                            "input; not through the FFI call");
    }
    if (n_weights == 1) {
      throw fastloss::Error(std::string(loss) + ": weights must be a pair (w_real, w_fake)");
    }
  }
  View<T> grads_all[3];
  for (size_t k = 0; want_grad && k < n_inputs; ++k) {
    grads_all[k] = ViewOf<T>(loss, "grad", Result<T>(loss, rets, 1 + k));
  }
  const ffi::AnyBuffer value = Result<T>(loss, rets, 0);
  const View<T> values = ViewOf<T>(loss, "value", value);
  const Batch batch = BatchOf(loss, attrs, inputs[0].rank, value);
  if (!none && values.rank != batch.nb) {
    throw fastloss::Error(std::string(loss) + ": the FFI call's value result must have one "
                          "element per batch member");
  }
  for (int64_t m = 0; m < batch.size; ++m) {
    View<const T> in[3], tgt, w[2];
    View<T> grads[3];
    for (size_t k = 0; k < n_inputs; ++k) {
      in[k] = Member(loss, "an input", inputs[k], batch, m);
      if (want_grad) {
        grads[k] = Member(loss, "grad", grads_all[k], batch, m);
        SameShape(loss, "gradient", grads[k], in[k].rank, in[k].shape);
      }
    }
    if (has_target) tgt = Member(loss, "the target", target, batch, m);
    for (size_t k = 0; k < n_weights; ++k) w[k] = Member(loss, "weights", weights[k], batch, m);
    // The losses' shape: elements or scores (the first input's), rows (less
    // its last axis), samples (axis 0).
    const View<const T>& a0 = in[0];
    int lrank = a0.rank;
    if constexpr (K == MultiKind::kRows) lrank = a0.rank > 0 ? a0.rank - 1 : 0;
    if constexpr (K == MultiKind::kSamples) lrank = a0.rank > 0 ? 1 : 0;
    std::optional<View<T>> losses;
    if (none) {
      losses = Member(loss, "losses", values, batch, m);
      SameShape(loss, "losses", *losses, lrank, a0.shape);
    }
    double v = 0.0;
    if constexpr (K == MultiKind::kRows || K == MultiKind::kElements) {
      fastloss::MultiCall<T> call;
      for (size_t k = 0; k < n_inputs; ++k) {
        call.inputs[k] = in[k];
        if (want_grad) call.grads[k] = grads[k];
      }
      if (has_target) call.target = tgt;
      if (n_weights) call.weights = w[0];
      call.reduction = red;
      call.losses = losses;
      v = Runner::template Run<T>(call, o);
    } else {
      fastloss::ScoreCall<T> calls[2];
      for (size_t k = 0; k < n_inputs && k < 2; ++k) {
        calls[k].scores = in[k];
        if (want_grad) calls[k].grad = grads[k];
        if (k < n_weights) calls[k].weights = w[k];
      }
      calls[0].losses = losses;
      if constexpr (K == MultiKind::kScorePair) {
        v = Runner::template Run<T>(calls[0], calls[1], red, o);
      } else {
        v = Runner::template Run<T>(calls[0], red, o);
      }
    }
    if (!none) static_cast<T*>(value.untyped_data())[m] = static_cast<T>(v);
  }
}

template <class O, MultiKind K, class Runner>
ffi::Error HandleMulti(const char* loss, size_t n_inputs, bool has_target,
                       ffi::RemainingArgs args, ffi::RemainingRets rets, ffi::Dictionary attrs) {
  return Guarded(loss, [&] {
    O o{};
    O::Fields(o, AttrReader{attrs, loss});
    if (args.size() < 1) throw fastloss::Error(std::string(loss) + ": no inputs");
    const ffi::DataType t = args.get<ffi::AnyBuffer>(0)->element_type();
    if constexpr (kOnJax<K>) {
      if (t == ffi::DataType::F32) {
        RunMulti<O, K, Runner, float>(loss, o, n_inputs, has_target, args, rets, attrs);
      } else if (t == ffi::DataType::F64) {
        RunMulti<O, K, Runner, double>(loss, o, n_inputs, has_target, args, rets, attrs);
      } else {
        throw fastloss::Error(std::string(loss) + ": the inputs must be float32 or float64, "
                              "got " + TypeName(t));
      }
    } else {
      throw fastloss::Error(std::string(loss) + ": not available through the FFI");
    }
  });
}

// The number of differentiable inputs of a row: its arguments less its target.
constexpr size_t CountInputs(const char* args, const char* target) {
  size_t words = 0;
  bool in_word = false;
  for (const char* p = args; *p; ++p) {
    if (*p != ' ' && !in_word) ++words;
    in_word = *p != ' ';
  }
  return words - (*target ? 1 : 0);
}

#define FASTLOSS_JAX_MULTI_HANDLER(Name, name, kind, aliases, args, target)                  \
  struct JaxMulti##Name {                                                                   \
    static ffi::Error Call(ffi::RemainingArgs a, ffi::RemainingRets r, ffi::Dictionary d) { \
      return HandleMulti<fastloss::Name##Options, MultiKind::k##kind, RunMulti##Name>(      \
          #name, CountInputs(args, target), *target != 0, a, r, d);                         \
    }                                                                                       \
  };
FASTLOSS_MULTI_LOSSES(FASTLOSS_JAX_MULTI_HANDLER)
#undef FASTLOSS_JAX_MULTI_HANDLER

}  // namespace

py::dict JaxHandlers() {
  py::dict out;
#define FASTLOSS_JAX_ENTRY(Name, name, ...) \
  out[#name] = py::capsule(reinterpret_cast<void*>(&Handler<Jax##Name>));
  FASTLOSS_LOSSES(FASTLOSS_JAX_ENTRY)
#undef FASTLOSS_JAX_ENTRY
#define FASTLOSS_JAX_MULTI_ENTRY(Name, name, kind, ...)                         \
  if (kOnJax<MultiKind::k##kind>) {                                              \
    out[#name] = py::capsule(reinterpret_cast<void*>(&Handler<JaxMulti##Name>));   \
  }
  FASTLOSS_MULTI_LOSSES(FASTLOSS_JAX_MULTI_ENTRY)
#undef FASTLOSS_JAX_MULTI_ENTRY
  return out;
}

}  // namespace fastloss_py
