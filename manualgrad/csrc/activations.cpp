// C++ twins of manualgrad.functional.activations (see twins.h).

#include <algorithm>
#include <array>
#include <vector>

#include "common.h"
#include "twins.h"

namespace manualgrad {

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

// An activation with coefficients, the Python Function's number arguments (N of them): forward
// Self::value(input, c), save y when Self::from_output(c) (else z), dL/dz =
// Self::gradient(saved, dL/dy, c), by default chain(saved, dL/dy, Self::derivative(·, c)). A
// branch on the coefficients is taken once per call, outside the element loop (one fused
// instantiation per branch), never per element.
template <typename Self, size_t N>
struct Pointwise : public torch::autograd::Function<Self> {
  using Coefficients = std::array<double, N>;
  template <typename... Numbers>
  static Tensor forward(AutogradContext* ctx, const Tensor& input, Numbers... numbers) {
    static_assert(sizeof...(Numbers) == N, "one coefficient per number argument");
    Coefficients c{static_cast<double>(numbers)...};
    Tensor output = Self::value(input, c);
    ctx->saved_data["coefficients"] = std::vector<double>(c.begin(), c.end());
    ctx->save_for_backward({Self::from_output(c) ? output : input});
    return output;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor saved = ctx->get_saved_variables()[0];
    std::vector<double> numbers = ctx->saved_data["coefficients"].toDoubleVector();
    Coefficients c;
    std::copy(numbers.begin(), numbers.end(), c.begin());
    variable_list result(N + 1);
    result[0] = Self::gradient(saved, grads[0], c);
    return result;
  }
  static Tensor gradient(const Tensor& saved, const Tensor& grad, const Coefficients& c) {
    return chain(saved, grad, [&c](auto x) { return Self::derivative(x, c); });
  }
};

// Python: manualgrad.functional.activations.LeakyReLUFunction.
struct LeakyReLUTwin : public Pointwise<LeakyReLUTwin, 1> {
  static bool from_output(const Coefficients& c) {
    return c[0] >= 0;
  }
  static Tensor value(const Tensor& input, const Coefficients& c) {
    double slope = c[0];
    if (slope == 0) {  // where(z > 0, z, 0·z): max(+inf, 0·inf = NaN) would be NaN
      return fused(input, [](auto z) { return where_positive(z, z, z * constant(z, 0)); });
    }
    if (slope <= 1) {
      return fused(input, [slope](auto z) { return maximum_of(z, z * constant(z, slope)); });
    }
    return fused(input, [slope](auto z) { return minimum_of(z, z * constant(z, slope)); });
  }
  template <typename V>
  static auto derivative(const V& z, const Coefficients& c) {
    // dL/dz = dL/dy · ((1 − 1[z > 0])·s + 1[z > 0])
    return (constant(z, 1) - indicator_gt(z, 0)) * constant(z, c[0]) + indicator_gt(z, 0);
  }
};

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kTanhBeta = 0.79788456080286535588;  // √(2/π)
constexpr double kTanhKappa = 0.044715;

// GELU's two forms (GELUFunction's gelu_value, gelu_derivative), each its own fused pass.
struct GELUErf {
  template <typename V>
  static auto value(const V& z) {  // ½z(1 + erf(z/√2))
    return (erf_of(z * constant(z, kSqrt1_2)) + constant(z, 1)) * z * constant(z, 0.5);
  }
  template <typename V>
  static auto derivative(const V& z) {  // Φ(z) + z·φ(z)
    auto density = exp_of(z * z * constant(z, -0.5));
    auto cdf = (erf_of(z * constant(z, kSqrt1_2)) + constant(z, 1)) * constant(z, 0.5);
    return cdf + constant(z, kInvSqrt2Pi) * z * density;
  }
};
struct GELUTanh {
  template <typename V>
  static auto inner(const V& z) {  // u = √(2/π)(z + κz³)
    return (z * z * z * constant(z, kTanhKappa) + z) * constant(z, kTanhBeta);
  }
  template <typename V>
  static auto value(const V& z) {  // ½z(1 + tanh(u))
    return (tanh_value(inner(z)) + constant(z, 1)) * z * constant(z, 0.5);
  }
  template <typename V>
  static auto derivative(const V& z) {  // ½(1 + t) + ½z(1 − t²)·√(2/π)(1 + 3κz²)
    auto t = tanh_value(inner(z));
    auto du = (z * z * constant(z, 3 * kTanhKappa) + constant(z, 1)) * constant(z, kTanhBeta);
    auto part = (constant(z, 1) - t * t) * du * z * constant(z, 0.5);
    return part + constant(z, 0.5) * t + constant(z, 0.5);
  }
};

// Python: manualgrad.functional.activations.GELUFunction; c[0] is 1 for approximate='tanh'.
struct GELUTwin : public Pointwise<GELUTwin, 1> {
  static bool from_output(const Coefficients&) {
    return false;
  }
  static Tensor value(const Tensor& input, const Coefficients& c) {
    if (c[0] != 0) {
      return fused(input, [](auto z) { return GELUTanh::value(z); });
    }
    return fused(input, [](auto z) { return GELUErf::value(z); });
  }
  static Tensor gradient(const Tensor& input, const Tensor& grad, const Coefficients& c) {
    if (c[0] != 0) {
      return chain(input, grad, [](auto z) { return GELUTanh::derivative(z); });
    }
    return chain(input, grad, [](auto z) { return GELUErf::derivative(z); });
  }
};

// Python: manualgrad.functional.activations.ELUFunction (elu; selu and celu through it);
// c = (α, λ, s): alpha, scale, input_scale.
struct ELUTwin : public Pointwise<ELUTwin, 3> {
  static bool from_output(const Coefficients& c) {
    return c[0] >= 0;
  }
  static Tensor value(const Tensor& input, const Coefficients& c) {
    return fused(input, [&c](auto z) {  // λ·max(z, 0) + λα·(e^{s·min(z, 0)} − 1)
      auto positive = maximum_of(z, constant(z, 0)) * constant(z, c[1]);
      auto negative = minimum_of(z, constant(z, 0)) * constant(z, c[2]);
      return positive + expm1_of(negative) * constant(z, c[0] * c[1]);
    });
  }
  // The slope from the negative branch's λα·e^{sz}/s (`negative`): 1[x ≤ 0]·s·negative +
  // (1 − 1[x ≤ 0])·λ.
  template <typename V, typename W>
  static auto slope(const V& x, const W& negative, const Coefficients& c) {
    auto low = indicator_le(x, 0) * (negative * constant(x, c[2]));
    return low + (constant(x, 1) - indicator_le(x, 0)) * constant(x, c[1]);
  }
  static Tensor gradient(const Tensor& saved, const Tensor& grad, const Coefficients& c) {
    // dL/dz = dL/dy · (λ·1[z > 0] + 1[z ≤ 0]·s(y + λα)), s(y + λα) = λαs·e^{sz}
    double coefficient = c[0] * c[1];
    if (from_output(c)) {
      return chain(saved, grad, [&c, coefficient](auto y) {
        return slope(y, fmin_of(y, 0) + constant(y, coefficient), c);
      });
    }
    return chain(saved, grad, [&c, coefficient](auto z) {
      return slope(z, exp_of(fmin_of(z, 0) * constant(z, c[2])) * constant(z, coefficient), c);
    });
  }
};

// Python: manualgrad.functional.activations.HardtanhFunction (hardtanh, relu6); c = (m, M).
struct HardtanhTwin : public Pointwise<HardtanhTwin, 2> {
  static bool from_output(const Coefficients&) {
    return true;
  }
  static Tensor value(const Tensor& input, const Coefficients& c) {
    return at::clamp(input, c[0], c[1]);
  }
  template <typename V>
  static auto derivative(const V& y, const Coefficients& c) {  // (1 − 1[y ≤ m])(1 − 1[y ≥ M])
    return (constant(y, 1) - indicator_le(y, c[0])) * (constant(y, 1) - indicator_ge(y, c[1]));
  }
};

// clamp(z + 3, 0, 6), hardsigmoid's and hardswish's ramp.
template <typename V>
auto hard_ramp(const V& z) {
  return minimum_of(maximum_of(z + constant(z, 3), constant(z, 0)), constant(z, 6));
}

// Python: manualgrad.functional.activations.HardsigmoidFunction.
struct HardsigmoidTwin : public Pointwise<HardsigmoidTwin, 0> {
  static bool from_output(const Coefficients&) {
    return true;
  }
  static Tensor value(const Tensor& input, const Coefficients&) {
    return fused(input, [](auto z) { return hard_ramp(z) / constant(z, 6); });
  }
  template <typename V>
  static auto derivative(const V& y, const Coefficients&) {  // 1[y > 0]·1[y < 1]/6
    return indicator_gt(y, 0) * indicator_lt(y, 1) / constant(y, 6);
  }
};

// Python: manualgrad.functional.activations.HardswishFunction.
struct HardswishTwin : public Pointwise<HardswishTwin, 0> {
  static bool from_output(const Coefficients&) {
    return false;
  }
  static Tensor value(const Tensor& input, const Coefficients&) {
    return fused(input, [](auto z) { return hard_ramp(z) * z / constant(z, 6); });
  }
  template <typename V>
  static auto derivative(const V& z, const Coefficients&) {
    // 1[−3 < z < 3]·(c/3 + ½) + (1 − 1[z < 3]), c = fmax(fmin(z, 3), −3)
    auto inside = indicator_gt(z, -3) * indicator_lt(z, 3);
    auto clamped = fmax_of(fmin_of(z, 3), -3);
    auto middle = inside * (clamped / constant(z, 3) + constant(z, 0.5));
    return middle + (constant(z, 1) - indicator_lt(z, 3));
  }
};

// Python: manualgrad.functional.activations.SoftplusFunction; c = (β, threshold).
struct SoftplusTwin : public Pointwise<SoftplusTwin, 2> {
  static bool from_output(const Coefficients&) {
    return false;
  }
  static Tensor value(const Tensor& input, const Coefficients& c) {
    return fused(input, [&c](auto z) {  // z where βz > threshold, else log(1 + e^{βz})/β
      auto scaled = z * constant(z, c[0]);
      return where_above(scaled, c[1], z, log1p_of(exp_of(scaled)) / constant(z, c[0]));
    });
  }
  template <typename V>
  static auto derivative(const V& z, const Coefficients& c) {
    // (1 − 1[βz > threshold])·σ(βz) + 1[βz > threshold]
    auto scaled = z * constant(z, c[0]);
    auto above = indicator_gt(scaled, c[1]);
    return (constant(z, 1) - above) * sigmoid_value(scaled) + above;
  }
};

// Python: manualgrad.functional.activations.MishFunction.
struct MishTwin : public Pointwise<MishTwin, 0> {
  static bool from_output(const Coefficients&) {
    return false;
  }
  static Tensor value(const Tensor& input, const Coefficients&) {
    return fused(input, [](auto z) { return tanh_value(log1p_of(exp_of(z))) * z; });
  }
  template <typename V>
  static auto derivative(const V& z, const Coefficients&) {  // t + z·σ(z)·(1 − t²)
    auto t = tanh_value(log1p_of(exp_of(z)));
    return (constant(z, 1) - t * t) * sigmoid_value(z) * z + t;
  }
};

// Python: manualgrad.functional.activations.LogSigmoidFunction.
struct LogSigmoidTwin : public Pointwise<LogSigmoidTwin, 0> {
  static bool from_output(const Coefficients&) {
    return false;
  }
  static Tensor value(const Tensor& input, const Coefficients&) {
    return fused(input, [](auto z) {  // min(z, 0) − log(1 + e^{−|z|})
      return minimum_of(z, constant(z, 0)) - log1p_of(exp_of(-abs_of(z)));
    });
  }
  template <typename V>
  static auto derivative(const V& z, const Coefficients&) {  // σ(−z)
    return sigmoid_value(-z);
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

Tensor relu(const Tensor& x) {
  return ReLUTwin::apply(x);
}
Tensor leaky_relu(const Tensor& x, double slope) {
  return LeakyReLUTwin::apply(x, slope);
}
Tensor gelu(const Tensor& x, std::string approximate) {
  return GELUTwin::apply(x, approximate == "tanh" ? 1.0 : 0.0);
}
Tensor silu(const Tensor& x) {
  return SiLUTwin::apply(x);
}
Tensor sigmoid(const Tensor& x) {
  return SigmoidTwin::apply(x);
}
Tensor tanh(const Tensor& x) {
  return TanhTwin::apply(x);
}
Tensor elu(const Tensor& x, double alpha, double scale, double input_scale) {
  return ELUTwin::apply(x, alpha, scale, input_scale);
}
Tensor hardtanh(const Tensor& x, double min_val, double max_val) {
  return HardtanhTwin::apply(x, min_val, max_val);
}
Tensor hardsigmoid(const Tensor& x) {
  return HardsigmoidTwin::apply(x);
}
Tensor hardswish(const Tensor& x) {
  return HardswishTwin::apply(x);
}
Tensor softplus(const Tensor& x, double beta, double threshold) {
  return SoftplusTwin::apply(x, beta, threshold);
}
Tensor mish(const Tensor& x) {
  return MishTwin::apply(x);
}
Tensor logsigmoid(const Tensor& x) {
  return LogSigmoidTwin::apply(x);
}

}  // namespace manualgrad
