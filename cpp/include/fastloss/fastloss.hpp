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
// (tests/cpp/header_example_test.cc compiles and runs this example.)
//
// The headers: core.hpp (views, calls, errors), accumulator.hpp (exact
// running state: LossState, ExactSum), options.hpp (how options
// describe their fields), registry.hpp (every loss of the y_true/y_pred form,
// one row each, from the family headers regression.hpp, classification.hpp,
// segmentation.hpp, detection.hpp, metric.hpp), ranking.hpp, adversarial.hpp
// (losses of other arguments), combination.hpp (fused sums), runtime.hpp.
//
// Threading and determinism: every function may be called from any number of
// threads at once. Large inputs are split over an internal pool (see
// SetNumThreads); reductions are accumulated in fixed blocks of
// kReductionBlock elements in float64 and the block partials added exactly
// (accumulator.hpp), so the value and the gradient are bit-for-bit identical
// for any thread count, and a LossState fed the batches of an array (in whole
// blocks) gives the one-shot value. segments.hpp: per-segment values in one
// call (Call::segments for elementwise losses, Segmented for the others).
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

#include "fastloss/accumulator.hpp"
#include "fastloss/adversarial.hpp"
#include "fastloss/combination.hpp"
#include "fastloss/confusion.hpp"
#include "fastloss/core.hpp"
#include "fastloss/options.hpp"
#include "fastloss/ranking.hpp"
#include "fastloss/registry.hpp"
#include "fastloss/runtime.hpp"
#include "fastloss/segments.hpp"
#include "fastloss/version.hpp"

#endif  // FASTLOSS_FASTLOSS_HPP_
