// Shared pieces of manualgrad's C++ twins (see twins.h for what they are): the value types'
// operations and the fused passes every element-wise twin is written with.
//
// An element-wise formula is written once, as a generic lambda over a "value" type V, and runs
// three ways:
//   - V = scalar_t and V = at::vec::Vectorized<scalar_t>: one fused, vectorised pass over a
//     TensorIterator (at::native::cpu_kernel_vec, parallel over large tensors), used for the
//     forward and for a first-order backward (grad mode off);
//   - V = at::Tensor: composite differentiable ATen ops, used when grad mode is on inside
//     backward (create_graph, double backward), so the gradient is differentiable again.
// The lambdas spell the Python Function's operations in the same order, so on the fused path
// the arithmetic is the same, rounding for rounding (transcendentals aside: exp, erf and tanh
// come from SLEEF here and from torch's own kernels there). No ATen backward kernel is called.
//
// Kernel files include this header and ATen, not <torch/extension.h> (which pulls in all of
// libtorch's C++ API and pybind11): only module.cpp does, which keeps the build short and lets
// the files compile in parallel.

#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/native/TensorIterator.h>
#include <ATen/native/cpu/Loops.h>
#include "twin_function.h"

#include "twins.h"

#include <cmath>
#include <limits>
#include <string>

namespace manualgrad {

using at::Tensor;
using torch::autograd::variable_list;
template <typename T>
using Vec = at::vec::Vectorized<T>;

// ---- the value types' operations: scalar, vector, tensor ----------------------------------

template <typename T>
T constant(const T&, double value) {
  return T(value);
}
template <typename T>
Vec<T> constant(const Vec<T>&, double value) {
  return Vec<T>(static_cast<T>(value));
}
inline at::Scalar constant(const Tensor&, double value) {
  return value;
}

// 1[x > t] and 1[x <= t] as 0./1. values of x's type (NaN compares false), as
// manualgrad.functional._elementwise.indicator.
#define MANUALGRAD_INDICATOR(name, op, method, aten)     \
  template <typename T>                                  \
  T name(T x, double t) {                                \
    return x op static_cast<T>(t) ? T(1) : T(0);         \
  }                                                      \
  template <typename T>                                  \
  Vec<T> name(const Vec<T>& x, double t) {               \
    return x.method(Vec<T>(static_cast<T>(t)));          \
  }                                                      \
  inline Tensor name(const Tensor& x, double t) {        \
    return aten(x, t).to(x.scalar_type());               \
  }
MANUALGRAD_INDICATOR(indicator_gt, >, gt, at::gt)
MANUALGRAD_INDICATOR(indicator_le, <=, le, at::le)
MANUALGRAD_INDICATOR(indicator_lt, <, lt, at::lt)
MANUALGRAD_INDICATOR(indicator_ge, >=, ge, at::ge)

// where(x > 0, a, b), as torch.where(input > 0, a, b).
template <typename T>
T where_positive(T x, T a, T b) {
  return x > T(0) ? a : b;
}
template <typename T>
Vec<T> where_positive(const Vec<T>& x, const Vec<T>& a, const Vec<T>& b) {
  return Vec<T>::blendv(b, a, x > Vec<T>(T(0)));
}
inline Tensor where_positive(const Tensor& x, const Tensor& a, const Tensor& b) {
  return at::where(x > 0, a, b);
}

// where(x > t, a, b), as torch.where(input > t, a, b).
template <typename T>
T where_above(T x, double t, T a, T b) {
  return x > static_cast<T>(t) ? a : b;
}
template <typename T>
Vec<T> where_above(const Vec<T>& x, double t, const Vec<T>& a, const Vec<T>& b) {
  return Vec<T>::blendv(b, a, x > Vec<T>(static_cast<T>(t)));
}
inline Tensor where_above(const Tensor& x, double t, const Tensor& a, const Tensor& b) {
  return at::where(x > t, a, b);
}

// torch.maximum / torch.minimum: NaN if either operand is NaN.
#define MANUALGRAD_EXTREMUM(name, op, vec, aten)                            \
  template <typename T>                                                     \
  T name(T a, T b) {                                                        \
    return std::isnan(a) ? a : (std::isnan(b) ? b : (a op b ? a : b));      \
  }                                                                         \
  template <typename T>                                                     \
  Vec<T> name(const Vec<T>& a, const Vec<T>& b) {                           \
    return vec(a, b);                                                       \
  }                                                                         \
  inline Tensor name(const Tensor& a, const Tensor& b) {                    \
    return aten(a, b);                                                      \
  }
MANUALGRAD_EXTREMUM(maximum_of, >, at::vec::maximum, at::maximum)
MANUALGRAD_EXTREMUM(minimum_of, <, at::vec::minimum, at::minimum)

// torch.fmin / torch.fmax against a number t: NaN-ignoring (t where x is NaN).
#define MANUALGRAD_NAN_IGNORING(name, op, scalar, aten)                        \
  template <typename T>                                                        \
  T name(T x, double t) {                                                      \
    return scalar(x, static_cast<T>(t));                                       \
  }                                                                            \
  template <typename T>                                                        \
  Vec<T> name(const Vec<T>& x, double t) {                                     \
    Vec<T> bound(static_cast<T>(t));                                           \
    return Vec<T>::blendv(bound, x, x op bound);                               \
  }                                                                            \
  inline Tensor name(const Tensor& x, double t) {                              \
    return aten(x, at::scalar_tensor(t, x.options()));                         \
  }
MANUALGRAD_NAN_IGNORING(fmin_of, <=, std::fmin, at::fmin)
MANUALGRAD_NAN_IGNORING(fmax_of, >=, std::fmax, at::fmax)

// A transcendental: std:: on scalars, the Vectorized method (SLEEF), a tensor function.
#define MANUALGRAD_UNARY(name, scalar, method, tensor) \
  template <typename T>                                \
  T name(T x) {                                        \
    return scalar(x);                                  \
  }                                                    \
  template <typename T>                                \
  Vec<T> name(const Vec<T>& x) {                       \
    return x.method();                                 \
  }                                                    \
  inline Tensor name(const Tensor& x) {                \
    return tensor(x);                                  \
  }
MANUALGRAD_UNARY(exp_of, std::exp, exp, at::exp)
MANUALGRAD_UNARY(erf_of, std::erf, erf, at::erf)
MANUALGRAD_UNARY(expm1_of, std::expm1, expm1, at::expm1)
MANUALGRAD_UNARY(log1p_of, std::log1p, log1p, at::log1p)
MANUALGRAD_UNARY(abs_of, std::abs, abs, at::abs)
// On tensors: the tanh twin's entry point (twins.h), differentiable again by the same derivation.
MANUALGRAD_UNARY(tanh_value, std::tanh, tanh, manualgrad::tanh)
// σ(x) = 1/(1 + e^{−x}).
template <typename T>
T sigmoid_value(T x) {
  return T(1) / (T(1) + std::exp(-x));
}
template <typename T>
Vec<T> sigmoid_value(const Vec<T>& x) {
  return (Vec<T>(T(1)) + x.neg().exp()).reciprocal();
}
inline Tensor sigmoid_value(const Tensor& x) {  // the sigmoid twin's entry point (twins.h)
  return manualgrad::sigmoid(x);
}

// A Python number of the twins' signatures (twins.h) as the at::Scalar ATen takes.
inline at::Scalar as_scalar(const Number& number) {
  return std::visit([](auto value) { return at::Scalar(value); }, number);
}

// ---- fused passes -------------------------------------------------------------------------

// Not wrapped by a torch.func transform or the legacy vmap (a backward run with
// is_grads_batched, as the batched Hessian-vector products of Newton, gets batched gradients:
// composite ops only, nothing in place).
inline bool plain(const Tensor& t) {
  static const c10::DispatchKeySet wrappers({c10::DispatchKey::FuncTorchBatched,
                                             c10::DispatchKey::FuncTorchGradWrapper,
                                             c10::DispatchKey::Batched});  // legacy vmap
  return !t.key_set().has_any(wrappers);
}

inline bool fusable(const Tensor& t) {
  return plain(t) && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
}

// fused() runs over t: plain, and float32/float64 or float16/bfloat16 (in float, see opmath).
inline bool mappable(const Tensor& t) {
  return fusable(t) || (plain(t) && at::isReducedFloatingType(t.scalar_type()));
}

// formula(x...) on a float32/float64 element or vector as it is; on a float16/bfloat16 one in
// float (a vector as its two Vectorized<float> halves), the result rounded once to the element
// type, as ATen's reduced-precision CPU kernels compute (opmath).
template <typename T, typename Formula, typename... Ts>
T opmath(const Formula& formula, T x, Ts... rest) {
  if constexpr (c10::is_reduced_floating_point_v<T>) {
    return static_cast<T>(formula(static_cast<float>(x), static_cast<float>(rest)...));
  } else {
    return formula(x, rest...);
  }
}
template <typename T, typename Formula>
Vec<T> opmath(const Formula& formula, const Vec<T>& x) {
  if constexpr (c10::is_reduced_floating_point_v<T>) {
    auto [x0, x1] = at::vec::convert_to_float<T>(x);
    return at::vec::convert_from_float<T>(formula(x0), formula(x1));
  } else {
    return formula(x);
  }
}
template <typename T, typename Formula>
Vec<T> opmath(const Formula& formula, const Vec<T>& x, const Vec<T>& y) {
  if constexpr (c10::is_reduced_floating_point_v<T>) {
    auto [x0, x1] = at::vec::convert_to_float<T>(x);
    auto [y0, y1] = at::vec::convert_to_float<T>(y);
    return at::vec::convert_from_float<T>(formula(x0, y0), formula(x1, y1));
  } else {
    return formula(x, y);
  }
}

// formula(a) element-wise in one vectorised pass (a new tensor, a's layout).
template <typename Formula>
Tensor fused(const Tensor& a, const Formula& formula) {
  Tensor output;
  auto iter = at::TensorIteratorConfig().add_output(output).add_const_input(a).build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "manualgrad_map", [&] {
    at::native::cpu_kernel_vec(
        iter, [&](scalar_t x) -> scalar_t { return opmath(formula, x); },
        [&](Vec<scalar_t> x) -> Vec<scalar_t> { return opmath(formula, x); });
  });
  return iter.output();
}

// formula(a, b) element-wise in one vectorised pass, broadcasting a against b.
template <typename Formula>
Tensor fused(const Tensor& a, const Tensor& b, const Formula& formula) {
  Tensor output;
  auto iter =
      at::TensorIteratorConfig().add_output(output).add_const_input(a).add_const_input(b).build();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, a.scalar_type(), "manualgrad_map2", [&] {
        at::native::cpu_kernel_vec(
            iter, [&](scalar_t x, scalar_t g) -> scalar_t { return opmath(formula, x, g); },
            [&](Vec<scalar_t> x, Vec<scalar_t> g) -> Vec<scalar_t> {
              return opmath(formula, x, g);
            });
      });
  return iter.output();
}

// The gradient dL/dz = derivative(saved) · dL/dy: fused when first order, composite (and so
// differentiable) when grad mode is on.
template <typename Derivative>
Tensor chain(const Tensor& saved, const Tensor& grad, const Derivative& derivative) {
  if (at::GradMode::is_enabled() || !mappable(grad) || !plain(saved) ||
      grad.scalar_type() != saved.scalar_type()) {
    return derivative(saved) * grad;
  }
  return fused(saved, grad, [&](auto x, auto g) { return derivative(x) * g; });
}

// A unary op (the activations, rsqrt) whose derivative is a function of its output y: forward Self::value (an ATen
// value op), save y only, dL/dz = Self::derivative(y) · dL/dy.
template <typename Self>
struct FromOutput : public TwinFunction<Self> {
  static Tensor forward(TwinContext* ctx, const Tensor& input) {
    Tensor output = Self::value(input);
    ctx->save_for_backward({output});
    return output;
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    Tensor output = ctx->get_saved_variables()[0];
    return {chain(output, grads[0], [](auto y) { return Self::derivative(y); })};
  }
};

// fresh ∘ other, in place when first order and plain (fresh is a temporary), as
// _elementwise.times.
inline Tensor times(Tensor fresh, const Tensor& other) {
  bool scratch = !at::GradMode::is_enabled() && plain(fresh) && plain(other);
  return scratch ? fresh.mul_(other) : fresh * other;
}

// ---- row reductions ------------------------------------------------------------------------

// reduce over the row of map(row values...) (`identity` the reduction's neutral value), with
// four independent vector accumulators: ATen's reduce_all carries one, and its loop is a chain
// of dependent reductions (a max is exact in any order; a sum's order is a rounding choice,
// within float rounding of the Python Function's torch.sum).
template <typename T, typename Map, typename Reduce, typename... Rows>
T row_reduce(int64_t width, T identity, const Map& map, const Reduce& reduce,
             const Rows*... rows) {
  using V = Vec<T>;
  constexpr int64_t n = V::size();
  V acc0(identity), acc1(identity), acc2(identity), acc3(identity);
  int64_t d = 0;
  for (; d + 4 * n <= width; d += 4 * n) {
    acc0 = reduce(acc0, map(V::loadu(rows + d)...));
    acc1 = reduce(acc1, map(V::loadu(rows + d + n)...));
    acc2 = reduce(acc2, map(V::loadu(rows + d + 2 * n)...));
    acc3 = reduce(acc3, map(V::loadu(rows + d + 3 * n)...));
  }
  for (; d + n <= width; d += n) {
    acc0 = reduce(acc0, map(V::loadu(rows + d)...));
  }
  if (d < width) {
    int64_t tail = width - d;
    acc1 = reduce(acc1, V::set(V(identity), map(V::loadu(rows + d, tail)...), tail));
  }
  return at::vec::vec_reduce_all<T>(reduce, reduce(reduce(acc0, acc1), reduce(acc2, acc3)));
}

template <typename T>
T row_max(const T* x, int64_t width) {
  return row_reduce<T>(
      width, -std::numeric_limits<T>::infinity(), [](Vec<T> v) { return v; },
      [](Vec<T> a, Vec<T> b) { return at::vec::maximum(a, b); }, x);
}

// a + b (a sum's reduction).
template <typename T>
Vec<T> plus(Vec<T> a, Vec<T> b) {
  return a + b;
}

template <typename T>
T row_sum(const T* x, int64_t width) {
  return row_reduce<T>(width, T(0), [](Vec<T> v) { return v; }, plus<T>, x);
}

// row(r) for r in [0, rows), in parallel over chunks of about 32768 elements (rows of width).
template <typename Row>
void parallel_rows(int64_t rows, int64_t width, const Row& row) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(width, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t r = begin; r < end; ++r) {
                       row(r);
                     }
                   });
}

// (..., k) viewed as (N, k); N explicit, so k may be 0.
inline Tensor flat_rows(const Tensor& t) {
  int64_t width = t.size(-1);
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) {
    rows *= t.size(d);
  }
  return t.reshape({rows, width});
}

}  // namespace manualgrad
