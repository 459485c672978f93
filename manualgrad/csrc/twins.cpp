// C++ twins of manualgrad's hot Functions: the eager path of Function.apply (see
// manualgrad/_ext.py). Each twin is the same derivation as the Python Function named in its
// comment, whose docstring holds it; the Python Function stays the reference and the path under
// torch.func and torch.compile.
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

#include <ATen/Dispatch.h>
#include <ATen/native/TensorIterator.h>
#include <ATen/native/cpu/Loops.h>
#include <torch/extension.h>

#include <cmath>
#include <string>

namespace manualgrad {

using at::Tensor;
using torch::autograd::AutogradContext;
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
Tensor tanh_twin(const Tensor& x);  // TanhTwin: differentiable again by the same derivation
MANUALGRAD_UNARY(tanh_value, std::tanh, tanh, tanh_twin)
// σ(x) = 1/(1 + e^{−x}).
template <typename T>
T sigmoid_value(T x) {
  return T(1) / (T(1) + std::exp(-x));
}
template <typename T>
Vec<T> sigmoid_value(const Vec<T>& x) {
  return (Vec<T>(T(1)) + x.neg().exp()).reciprocal();
}
Tensor sigmoid_value(const Tensor& x);  // SigmoidTwin

// ---- fused passes -------------------------------------------------------------------------

// Not wrapped by a torch.func transform or the legacy vmap (a backward run with
// is_grads_batched, as the batched Hessian-vector products of Newton, gets batched gradients:
// composite ops only, nothing in place).
bool plain(const Tensor& t) {
  static const c10::DispatchKeySet wrappers({c10::DispatchKey::FuncTorchBatched,
                                             c10::DispatchKey::FuncTorchGradWrapper,
                                             c10::DispatchKey::Batched});  // legacy vmap
  return !t.key_set().has_any(wrappers);
}

bool fusable(const Tensor& t) {
  return plain(t) && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
}

// formula(a) element-wise in one vectorised pass (a new tensor, a's layout).
template <typename Formula>
Tensor fused(const Tensor& a, const Formula& formula) {
  Tensor output;
  auto iter = at::TensorIteratorConfig().add_output(output).add_const_input(a).build();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "manualgrad_map", [&] {
    at::native::cpu_kernel_vec(
        iter, [&](scalar_t x) -> scalar_t { return formula(x); },
        [&](Vec<scalar_t> x) -> Vec<scalar_t> { return formula(x); });
  });
  return iter.output();
}

// formula(a, b) element-wise in one vectorised pass, broadcasting a against b.
template <typename Formula>
Tensor fused(const Tensor& a, const Tensor& b, const Formula& formula) {
  Tensor output;
  auto iter =
      at::TensorIteratorConfig().add_output(output).add_const_input(a).add_const_input(b).build();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "manualgrad_map2", [&] {
    at::native::cpu_kernel_vec(
        iter, [&](scalar_t x, scalar_t g) -> scalar_t { return formula(x, g); },
        [&](Vec<scalar_t> x, Vec<scalar_t> g) -> Vec<scalar_t> { return formula(x, g); });
  });
  return iter.output();
}

// The gradient dL/dz = derivative(saved) · dL/dy: fused when first order, composite (and so
// differentiable) when grad mode is on.
template <typename Derivative>
Tensor chain(const Tensor& saved, const Tensor& grad, const Derivative& derivative) {
  if (at::GradMode::is_enabled() || !fusable(grad) || !plain(saved) ||
      grad.scalar_type() != saved.scalar_type()) {
    return derivative(saved) * grad;
  }
  return fused(saved, grad, [&](auto x, auto g) { return derivative(x) * g; });
}

// ---- element-wise twins -------------------------------------------------------------------

// An activation whose derivative is a function of its output y: forward Self::value (an ATen
// value op), save y only, dL/dz = Self::derivative(y) · dL/dy.
template <typename Self>
struct FromOutput : public torch::autograd::Function<Self> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input) {
    Tensor output = Self::value(input);
    ctx->save_for_backward({output});
    return output;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor output = ctx->get_saved_variables()[0];
    return {chain(output, grads[0], [](auto y) { return Self::derivative(y); })};
  }
};

// Python: manualgrad.functional.activations.ReLUFunction.
struct ReLUTwin : public FromOutput<ReLUTwin> {
  static Tensor value(const Tensor& input) {
    return at::clamp_min(input, 0);
  }
  template <typename V>
  static auto derivative(const V& y) {  // 1 − 1[y ≤ 0]
    return constant(y, 1) - indicator_le(y, 0);
  }
};

// Python: manualgrad.functional.activations.LeakyReLUFunction.
struct LeakyReLUTwin : public torch::autograd::Function<LeakyReLUTwin> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, double slope) {
    Tensor output = fused(input, [slope](auto z) {
      auto scaled = z * constant(z, slope);
      if (slope == 0) {
        return where_positive(z, z, scaled);
      }
      return slope <= 1 ? maximum_of(z, scaled) : minimum_of(z, scaled);
    });
    ctx->saved_data["slope"] = slope;
    ctx->save_for_backward({slope >= 0 ? output : input});
    return output;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor saved = ctx->get_saved_variables()[0];
    double slope = ctx->saved_data["slope"].toDouble();
    // dL/dz = dL/dy · ((1 − 1[z > 0])·s + 1[z > 0])
    auto derivative = [slope](auto z) {
      return (constant(z, 1) - indicator_gt(z, 0)) * constant(z, slope) + indicator_gt(z, 0);
    };
    return {chain(saved, grads[0], derivative), Tensor()};
  }
};

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kTanhBeta = 0.79788456080286535588;  // √(2/π)
constexpr double kTanhKappa = 0.044715;

// Python: manualgrad.functional.activations.GELUFunction (gelu_value, gelu_derivative).
struct GELUTwin : public torch::autograd::Function<GELUTwin> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, std::string approximate) {
    bool tanh = approximate == "tanh";
    ctx->saved_data["tanh"] = tanh;
    ctx->save_for_backward({input});
    return fused(input, [tanh](auto z) {
      if (tanh) {  // ½z(1 + tanh(√(2/π)(z + κz³)))
        auto inner = (z * z * z * constant(z, kTanhKappa) + z) * constant(z, kTanhBeta);
        return (tanh_value(inner) + constant(z, 1)) * z * constant(z, 0.5);
      }
      return (erf_of(z * constant(z, kSqrt1_2)) + constant(z, 1)) * z * constant(z, 0.5);
    });
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor input = ctx->get_saved_variables()[0];
    bool tanh = ctx->saved_data["tanh"].toBool();
    auto derivative = [tanh](auto z) {
      if (tanh) {  // ½(1 + t) + ½z(1 − t²)·√(2/π)(1 + 3κz²)
        auto t = tanh_value((z * z * z * constant(z, kTanhKappa) + z) * constant(z, kTanhBeta));
        auto du = (z * z * constant(z, 3 * kTanhKappa) + constant(z, 1)) * constant(z, kTanhBeta);
        auto part = (constant(z, 1) - t * t) * du * z * constant(z, 0.5);
        return part + constant(z, 0.5) * t + constant(z, 0.5);
      }
      // Φ(z) + z·φ(z)
      auto density = exp_of(z * z * constant(z, -0.5));
      auto cdf = (erf_of(z * constant(z, kSqrt1_2)) + constant(z, 1)) * constant(z, 0.5);
      return cdf + constant(z, kInvSqrt2Pi) * z * density;
    };
    return {chain(input, grads[0], derivative), Tensor()};
  }
};

// Python: manualgrad.functional.activations.SiLUFunction.
struct SiLUTwin : public torch::autograd::Function<SiLUTwin> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input) {
    ctx->save_for_backward({input});
    return fused(input, [](auto z) { return z * sigmoid_value(z); });
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor input = ctx->get_saved_variables()[0];
    // dL/dz = dL/dy · σ(z)·(1 + z(1 − σ(z)))
    return {chain(input, grads[0], [](auto z) {
      auto sigma = sigmoid_value(z);
      return ((constant(z, 1) - sigma) * z + constant(z, 1)) * sigma;
    })};
  }
};

// Python: manualgrad.functional.activations.SigmoidFunction.
struct SigmoidTwin : public FromOutput<SigmoidTwin> {
  static Tensor value(const Tensor& input) {
    return at::sigmoid(input);
  }
  template <typename V>
  static auto derivative(const V& y) {  // y(1 − y)
    return (constant(y, 1) - y) * y;
  }
};

// Python: manualgrad.functional.activations.TanhFunction.
struct TanhTwin : public FromOutput<TanhTwin> {
  static Tensor value(const Tensor& input) {
    return at::tanh(input);
  }
  template <typename V>
  static auto derivative(const V& y) {  // 1 − y²
    return constant(y, 1) - y * y;
  }
};

Tensor tanh_twin(const Tensor& x) {
  return TanhTwin::apply(x);
}
Tensor sigmoid_value(const Tensor& x) {
  return SigmoidTwin::apply(x);
}

// ---- linear -------------------------------------------------------------------------------

// (..., k) viewed as (N, k); N explicit, so k may be 0.
Tensor flat_rows(const Tensor& t) {
  int64_t width = t.size(-1);
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < t.dim(); ++d) {
    rows *= t.size(d);
  }
  return t.reshape({rows, width});
}

// Python: manualgrad.functional.linear.LinearFunction (affine_grads).
struct LinearTwin : public torch::autograd::Function<LinearTwin> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Tensor& weight,
                        const std::optional<Tensor>& bias) {
    // Each gradient needs the other operand (the graph's edges exist only when grad is on).
    ctx->save_for_backward(
        {weight.requires_grad() ? input : Tensor(), input.requires_grad() ? weight : Tensor()});
    ctx->saved_data["bias"] = bias.has_value();  // needs_input_grad counts tensor inputs only
    if (input.dim() == 2 && bias.has_value()) {
      return at::addmm(*bias, input, weight.t());
    }
    Tensor output = input.matmul(weight.t());
    return bias.has_value() ? output + *bias : output;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor& grad = grads[0];
    Tensor grad_input, grad_weight, grad_bias;
    if (ctx->needs_input_grad(0)) {  // dL/dx = G W
      grad_input = grad.matmul(saved[1]);
    }
    if (ctx->needs_input_grad(1)) {  // dL/dW = Gᵀ X
      grad_weight = flat_rows(grad).t().matmul(flat_rows(saved[0]));
    }
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) {  // dL/db = Σ_rows G
      grad_bias = flat_rows(grad).sum(0);
    }
    return {grad_input, grad_weight, grad_bias};
  }
};

// ---- softmax, log_softmax -----------------------------------------------------------------

// z − max_dim z, a fresh tensor (an empty tensor has no max: its copy).
Tensor shifted(const Tensor& input, int64_t dim) {
  if (input.numel() == 0) {
    return input.clone();
  }
  return input - input.amax(dim, true);
}

// fresh ∘ other, in place when first order and plain (fresh is a temporary), as
// _elementwise.times.
Tensor times(Tensor fresh, const Tensor& other) {
  bool scratch = !at::GradMode::is_enabled() && plain(fresh) && plain(other);
  return scratch ? fresh.mul_(other) : fresh * other;
}

// A normalisation along ``dim`` whose Jacobian is a function of its output y: forward
// Self::value, save y only, dL/dz = Self::gradient(y, dL/dy, dim).
template <typename Self>
struct AlongDim : public torch::autograd::Function<Self> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, int64_t dim) {
    Tensor output = Self::value(input, dim);
    ctx->saved_data["dim"] = dim;
    ctx->save_for_backward({output});
    return output;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor output = ctx->get_saved_variables()[0];
    return {Self::gradient(output, grads[0], ctx->saved_data["dim"].toInt()), Tensor()};
  }
};

// Python: manualgrad.functional.softmax.SoftmaxFunction.
struct SoftmaxTwin : public AlongDim<SoftmaxTwin> {
  static Tensor value(const Tensor& input, int64_t dim) {
    Tensor exps = shifted(input, dim).exp_();
    return exps.div_(exps.sum(dim, true));
  }
  static Tensor gradient(const Tensor& output, const Tensor& grad, int64_t dim) {
    // dL/dz = y ⊙ (g − Σ_dim g ⊙ y)
    Tensor dot = (grad * output).sum(dim, true);
    return times(grad - dot, output);
  }
};

// Python: manualgrad.functional.softmax.LogSoftmaxFunction (log_softmax_values).
struct LogSoftmaxTwin : public AlongDim<LogSoftmaxTwin> {
  static Tensor value(const Tensor& input, int64_t dim) {
    Tensor values = shifted(input, dim);
    return values.sub_(at::exp(values).sum(dim, true).log_());
  }
  static Tensor gradient(const Tensor& output, const Tensor& grad, int64_t dim) {
    // dL/dz = g − e^{y} ⊙ Σ_dim g
    Tensor total = grad.sum(dim, true);
    return grad - times(at::exp(output), total);
  }
};

}  // namespace manualgrad

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using namespace manualgrad;
  m.doc() = "C++ twins of manualgrad's hot Functions (the eager path; see manualgrad/_ext.py)";
  m.def("relu", [](const Tensor& x) { return ReLUTwin::apply(x); });
  m.def("leaky_relu", [](const Tensor& x, double s) { return LeakyReLUTwin::apply(x, s); });
  m.def("gelu", [](const Tensor& x, std::string a) { return GELUTwin::apply(x, a); });
  m.def("silu", [](const Tensor& x) { return SiLUTwin::apply(x); });
  m.def("sigmoid", [](const Tensor& x) { return SigmoidTwin::apply(x); });
  m.def("tanh", [](const Tensor& x) { return TanhTwin::apply(x); });
  m.def("linear", [](const Tensor& x, const Tensor& w, const std::optional<Tensor>& b) {
    return LinearTwin::apply(x, w, b);
  });
  m.def("softmax", [](const Tensor& x, int64_t dim) { return SoftmaxTwin::apply(x, dim); });
  m.def("log_softmax", [](const Tensor& x, int64_t dim) { return LogSoftmaxTwin::apply(x, dim); });
}
