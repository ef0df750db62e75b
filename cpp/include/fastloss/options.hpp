// fastloss: how an options struct describes its fields.
//
// Every loss's options struct lists its fields once, with their checks and a
// one-line doc, in a static member template
//
//   template <class S, class V> static void Fields(S& self, V&& visit);
//
// written with the FASTLOSS_FIELDS macro below. Everything that reads or
// describes options walks this list: the options' checks (CheckOptions), the
// Python front door's keyword parser, fl.NAME.options and the docstrings'
// option lists. A field's default is its member initializer, written once:
// describers read it from a value-initialized struct.
#ifndef FASTLOSS_OPTIONS_HPP_
#define FASTLOSS_OPTIONS_HPP_

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fastloss/core.hpp"

namespace fastloss {

// The range a numeric field must lie in. Each check's message is
// "<loss>: <field> must be ..., got <value>" (fastloss::Error).
enum class Check {
  kAny,          // any value, NaN and inf included
  kFinite,       // finite
  kPositive,     // finite and > 0
  kNonNegative,  // finite and >= 0
  kOpenUnit,     // in the open interval (0, 1)
  kUnit,         // in [0, 1]
  kHalfOpenUnit, // in [0, 1)
  kSigned,       // in [-1, 1]
  kNotOpenUnit,  // finite and outside the open interval (0, 1)
};

// The kind of a field, as the describers (Python's parser, docs) see it.
enum class FieldKind {
  kReal,          // double
  kBool,          // bool
  kInt,           // int
  kOptionalReal,  // std::optional<double> (None in Python)
  kOptionalInt,   // std::optional<int64_t> (None in Python)
  kAxes,          // all_axes flag + std::vector<int> (None, an int or a tuple)
  kChoice,        // an enum stored as int, named by a null-terminated list of strings
  kRealOrArray,   // a double, or an array broadcast to y_pred passed beside the options
  kClassWeights,  // an array of C class weights passed beside the options (LabelCall)
  kGroups,        // integer group ids passed beside the options (PairwiseRanking's groups)
};

namespace detail {
inline std::string FormatNumber(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", x);
  return buf;
}
inline const char* CheckText(Check c) {
  switch (c) {
    case Check::kAny: return "";
    case Check::kFinite: return "a finite number";
    case Check::kPositive: return "a finite number > 0";
    case Check::kNonNegative: return "a finite number >= 0";
    case Check::kOpenUnit: return "in the open interval (0, 1)";
    case Check::kUnit: return "in [0, 1]";
    case Check::kHalfOpenUnit: return "in [0, 1)";
    case Check::kSigned: return "in [-1, 1]";
    case Check::kNotOpenUnit: return "a finite number <= 0 or >= 1";
  }
  return "";
}
inline bool Passes(Check c, double x) {
  switch (c) {
    case Check::kAny: return true;
    case Check::kFinite: return std::isfinite(x);
    case Check::kPositive: return std::isfinite(x) && x > 0;
    case Check::kNonNegative: return std::isfinite(x) && x >= 0;
    case Check::kOpenUnit: return x > 0 && x < 1;
    case Check::kUnit: return x >= 0 && x <= 1;
    case Check::kHalfOpenUnit: return x >= 0 && x < 1;
    case Check::kSigned: return x >= -1 && x <= 1;
    case Check::kNotOpenUnit: return std::isfinite(x) && (x <= 0 || x >= 1);
  }
  return true;
}

// The visitor CheckOptions uses: every checked numeric field in range.
struct Checker {
  const char* loss;
  void Fail(const char* field, Check c, double x, const char* suffix = "") const {
    throw Error(std::string(loss) + ": " + field + " must be " + CheckText(c) + suffix +
                ", got " + FormatNumber(x));
  }
  void Real(const char* field, double x, Check c, const char*) const {
    if (!Passes(c, x)) Fail(field, c, x);
  }
  void RealOrArray(const char* field, double x, Check c, const char*) const {
    if (!Passes(c, x)) Fail(field, c, x);
  }
  void OptionalReal(const char* field, const std::optional<double>& x, Check c,
                    const char*) const {
    if (x && !Passes(c, *x)) Fail(field, c, *x, " (or None)");
  }
  template <class... A> void Bool(A&&...) const {}
  template <class... A> void Int(A&&...) const {}
  template <class... A> void OptionalInt(A&&...) const {}
  template <class... A> void Axes(A&&...) const {}
  template <class... A> void Choice(A&&...) const {}
  template <class... A> void ClassWeights(A&&...) const {}
  template <class... A> void Groups(A&&...) const {}
};

// The visitor FieldNames uses: every field's name, in order.
struct Namer {
  std::vector<std::string>* out;
  template <class... A> void Real(const char* f, A&&...) const { out->push_back(f); }
  template <class... A> void Bool(const char* f, A&&...) const { out->push_back(f); }
  template <class... A> void Int(const char* f, A&&...) const { out->push_back(f); }
  template <class... A> void OptionalReal(const char* f, A&&...) const { out->push_back(f); }
  template <class... A> void OptionalInt(const char* f, A&&...) const { out->push_back(f); }
  template <class... A> void Axes(const char* f, A&&...) const { out->push_back(f); }
  template <class... A> void Choice(const char* f, A&&...) const { out->push_back(f); }
  template <class... A> void RealOrArray(const char* f, A&&...) const { out->push_back(f); }
  template <class... A> void ClassWeights(const char* f, A&&...) const { out->push_back(f); }
  template <class... A> void Groups(const char* f, A&&...) const { out->push_back(f); }
};
}  // namespace detail

// The names of Options' fields, in order (the Python-facing names).
template <class Options>
std::vector<std::string> FieldNames() {
  std::vector<std::string> names;
  const Options defaults{};
  Options::Fields(defaults, detail::Namer{&names});
  return names;
}

// Options structs of metrics (FASTLOSS_METRIC() in the struct): piecewise
// constant scores evaluated like losses (value, reductions, weights, segments,
// accumulators) that have no gradient to give. The Python front door refuses
// grad / value_and_grad and combinations for them; the C++ entry points write
// zeros (the derivative wherever it exists) to a gradient view.
template <class Options, class = void>
struct IsMetric : std::false_type {};
template <class Options>
struct IsMetric<Options, std::void_t<decltype(Options::kMetric)>>
    : std::integral_constant<bool, Options::kMetric> {};

// An options struct may check what its field list cannot express (an
// integer's range) in `static void Validate(const char* loss, const Self&)`,
// which throws fastloss::Error; CheckOptions runs it after the fields.
template <class Options, class = void>
struct HasValidate : std::false_type {};
template <class Options>
struct HasValidate<Options, std::void_t<decltype(Options::Validate("", std::declval<const Options&>()))>>
    : std::true_type {};

// Throws fastloss::Error naming `loss` and the first field out of its range.
template <class Options>
void CheckOptions(const char* loss, const Options& o) {
  Options::Fields(o, detail::Checker{loss});
  if constexpr (HasValidate<Options>::value) Options::Validate(loss, o);
}

}  // namespace fastloss

// FASTLOSS_FIELDS(fields...) declares an options struct's Fields(self, v);
// each field is one of
//   FASTLOSS_REAL(name, check, doc)             double name
//   FASTLOSS_BOOL(name, doc)                    bool name
//   FASTLOSS_INT(name, doc)                     int name
//   FASTLOSS_OPTIONAL_REAL(name, check, doc)    std::optional<double> name
//   FASTLOSS_OPTIONAL_INT(name, doc)            std::optional<int64_t> name
//   FASTLOSS_AXES(name, doc)                    bool all_axes + std::vector<int> axes
//   FASTLOSS_CHOICE(name, choices, doc)         an enum; choices: const char* const[], null-ended
//   FASTLOSS_REAL_OR_ARRAY(name, check, doc)    double name, or an array beside the options
//   FASTLOSS_CLASS_WEIGHTS(doc)                 the class_weights array beside the options
//   FASTLOSS_GROUPS(doc)                        the integer groups array beside the options
// (separated by nothing). The visitor gets the Python-facing name, a
// reference to the storage, the check and the doc line.
#define FASTLOSS_FIELDS(...)                       \
  template <class S_, class V_>                    \
  static void Fields(S_& self_, V_&& visit_) {     \
    (void)self_;                                   \
    (void)visit_;                                  \
    __VA_ARGS__                                    \
  }
#define FASTLOSS_REAL(name, check, doc) visit_.Real(#name, self_.name, ::fastloss::Check::check, doc);
#define FASTLOSS_BOOL(name, doc) visit_.Bool(#name, self_.name, doc);
#define FASTLOSS_INT(name, doc) visit_.Int(#name, self_.name, doc);
#define FASTLOSS_OPTIONAL_REAL(name, check, doc) \
  visit_.OptionalReal(#name, self_.name, ::fastloss::Check::check, doc);
#define FASTLOSS_OPTIONAL_INT(name, doc) \
  visit_.OptionalInt(#name, self_.name, doc);
#define FASTLOSS_AXES(name, doc) visit_.Axes(#name, self_.all_axes, self_.axes, doc);
#define FASTLOSS_CHOICE(name, choices, doc) visit_.Choice(#name, self_.name, choices, doc);
#define FASTLOSS_REAL_OR_ARRAY(name, check, doc) \
  visit_.RealOrArray(#name, self_.name, ::fastloss::Check::check, doc);
#define FASTLOSS_CLASS_WEIGHTS(doc) visit_.ClassWeights("class_weights", doc);
#define FASTLOSS_GROUPS(doc) visit_.Groups("groups", doc);

// FASTLOSS_METRIC(): marks an options struct as a metric's (IsMetric).
#define FASTLOSS_METRIC() static constexpr bool kMetric = true;

// FASTLOSS_DOC(summary, formula, notes): a loss's documentation in its
// options struct (reStructuredText fragments; the Python docstrings add the
// option list and the call contract of the loss's driver).
#define FASTLOSS_DOC(summary, formula, notes)           \
  static constexpr const char* kSummary = summary;      \
  static constexpr const char* kFormula = formula;      \
  static constexpr const char* kNotes = notes;

#endif  // FASTLOSS_OPTIONS_HPP_
