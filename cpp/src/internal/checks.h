// Argument checks shared by the drivers: each names the argument in its
// message, as the Python package reports it.
#ifndef FASTLOSS_SRC_INTERNAL_CHECKS_H_
#define FASTLOSS_SRC_INTERNAL_CHECKS_H_

#include <cstdint>
#include <string>

#include "fastloss/fastloss.hpp"

namespace fastloss {
namespace internal {

// "(a, b)": a shape.
std::string ShapeString(const int64_t* shape, int rank);
// "(i, j, k)": the multi-index of flat C-order position `flat` in `shape`.
std::string PositionString(int64_t flat, const int64_t* shape, int rank);

template <typename V>
inline void CheckView(const char* name, const char* arg, const V& v) {
  if (v.rank < 0 || v.rank > kMaxRank) {
    throw Error(std::string(name) + ": " + arg + " has rank " + std::to_string(v.rank) +
                ", the limit is " + std::to_string(kMaxRank));
  }
  for (int k = 0; k < v.rank; ++k) {
    if (v.shape[k] < 0) {
      throw Error(std::string(name) + ": " + arg + " has a negative dimension");
    }
  }
  if (!v.valid()) throw Error(std::string(name) + ": " + arg + " has no data");
}

template <typename A, typename B>
inline void CheckSameShape(const char* name, const char* a_name, const A& a, const char* b_name,
                    const B& b) {
  bool same = a.rank == b.rank;
  for (int k = 0; same && k < a.rank; ++k) same = a.shape[k] == b.shape[k];
  if (!same) {
    throw Error(std::string(name) + ": " + a_name + " and " + b_name +
                " must have the same shape, got " + ShapeString(a.shape, a.rank) +
                " and " + ShapeString(b.shape, b.rank));
  }
}

// Broadcasts `v` (NumPy rules, right-aligned) to `p`'s shape (called
// `target` in errors): fills `strides` (0 along broadcast dimensions).
template <typename T>
inline void BroadcastTo(const char* name, const char* arg, const View<const T>& v,
                 const View<const T>& p, int64_t* strides,
                        const char* target = "y_pred's shape") {
  CheckView(name, arg, v);
  bool ok = v.rank <= p.rank;
  for (int k = 0; ok && k < v.rank; ++k) {
    const int64_t vs = v.shape[v.rank - 1 - k], ps = p.shape[p.rank - 1 - k];
    ok = vs == ps || vs == 1;
  }
  if (!ok) {
    throw Error(std::string(name) + ": " + arg + " of shape " + ShapeString(v.shape, v.rank) +
                " cannot be broadcast to " + target + " " + ShapeString(p.shape, p.rank));
  }
  const int lead = p.rank - v.rank;
  for (int k = 0; k < p.rank; ++k) {
    const bool broadcast = k < lead || v.shape[k - lead] != p.shape[k];
    strides[k] = broadcast ? 0 : v.strides[k - lead];
  }
}

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_INTERNAL_CHECKS_H_
