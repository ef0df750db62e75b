// fastloss: per-segment losses in one call.
//
// A segmented call reduces each segment of the items on its own: the
// elements of an elementwise loss (in flat C order), the rows (axis 0) of
// the other losses. Segment s holds the items [offsets[s], offsets[s+1]),
// CSR row pointers of length S + 1 (non-decreasing, from 0 to the number of
// items). values[s] is the call's reduction (kMean or kSum) over segment s;
// an empty segment gives 0 for kSum and NaN for kMean. The gradient, when
// the call has one, is that of the sum of the segment values: each
// segment's part is the gradient of its own reduced value.
//
//   std::vector<double> values(S);
//   fastloss::Segmented<float>("huber", call, offsets, values.data(),
//       /*elements=*/true, /*loss_rank=*/call.y_pred.rank,
//       [&](const fastloss::Call<float>& c) { return fastloss::Huber(c, options); });
//
// Each segment is the loss's own call on views of the operands: the same
// checks, kernels and bits as calling it on that segment alone, so the
// values are the same for any thread count. Segments run in parallel on the
// library's threads when they are many and small. Weights are sliced along
// with the items when they have the items' extent along the segmented axis
// (full shape for elements), and are passed whole when they broadcast along
// it. A data-dependent error (a label out of range) in one segment is thrown
// after the other segments' outputs may have been written.
#ifndef FASTLOSS_SEGMENTS_HPP_
#define FASTLOSS_SEGMENTS_HPP_

#include <cstdint>
#include <functional>

#include "fastloss/core.hpp"

namespace fastloss {

// Segments the elements (flat C order: every operand C-contiguous, or 1-D)
// when `elements`, else the rows (axis 0) of call.y_pred. `loss_rank` is
// the rank of the loss's per-item losses (those weights broadcast to: the
// weights follow the items when they have that rank and more than one item
// along axis 0). `run` is the loss's entry point on one segment's call.
//
// `states`, when not null, points to S LossStates: segment s's sums are added
// to states[s] (a per-segment accumulator; call.state must be null).
template <typename T, class CallT>
void Segmented(const char* name, const CallT& call, const View<const int64_t>& offsets,
               T* values, bool elements, int loss_rank,
               const std::function<double(const CallT&)>& run, LossState* states = nullptr);

// Offsets (S + 1) from sorted segment ids in [0, num_segments), one per
// item: an Error naming `segment_ids` for an id out of range or out of order.
void OffsetsFromSortedIds(const View<const int64_t>& segment_ids, int64_t num_segments,
                          int64_t* offsets);

}  // namespace fastloss

#endif  // FASTLOSS_SEGMENTS_HPP_
