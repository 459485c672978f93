// C++ twins of manualgrad.functional.activations (see twins.h).

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


Tensor relu(const Tensor& x) {
  return ReLUTwin::apply(x);
}
Tensor leaky_relu(const Tensor& x, double slope) {
  return LeakyReLUTwin::apply(x, slope);
}
Tensor gelu(const Tensor& x, std::string approximate) {
  return GELUTwin::apply(x, approximate);
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

}  // namespace manualgrad
