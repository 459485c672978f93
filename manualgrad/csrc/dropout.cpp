// C++ twins of manualgrad.functional.dropout.DropoutFunction and AlphaDropoutFunction (see
// twins.h). The Python wrapper (F.dropout, ...) validates p and draws the bool keep-mask m as
// torch's CPU dropout draws its noise; the twins take m as an input, as the Python Functions do,
// so both paths see the same mask for the same RNG state.
//
// Both are one map y = x·s(m) + t(m) of a bool mask (s, t per dtype, as the Python Function
// computes them): written element by element in one pass where x and m are contiguous and of
// one shape, else with the Python Function's composite ops (a broadcast channel mask, p = 1's
// 0-d mask, grad mode on in backward).

#include <cmath>

#include "common.h"
#include "twins.h"

#include <ATen/Parallel.h>

namespace manualgrad {

namespace {

constexpr double kSeluAlphaScale = 1.7580993408473766;  // λα of SELU

// The map's numbers as the Python Function computes them from p (in double, cast to the dtype
// where applied): dropout's divisor 1 − p or alpha dropout's scale a, and alpha dropout's shift
// t(m) = (m − 1)·α′a + α′a·p as (α′a, α′a·p).
struct Coefficients {
  double scale;
  double shift_slope = 0;
  double shift_offset = 0;
};

Coefficients dropout_coefficients(double p) {
  return {1 - p};  // keep_scale divides m by 1 − p
}

Coefficients alpha_coefficients(double p) {
  double a = 1.0 / std::pow((std::pow(kSeluAlphaScale, 2) * p + 1) * (1 - p), 0.5);
  return {a, kSeluAlphaScale * a, kSeluAlphaScale * a * p};
}

// The three maps of a bool mask m the Functions compute: dropout's x·(m/(1 − p)) (kDivide; a
// division, as torch's noise), alpha dropout's x·(m·a) + ((m − 1)·α′a + α′a·p) (kAffine) and its
// gradient g·(m·a) (kScale).
enum class Map { kDivide, kAffine, kScale };

// The map in one pass over a contiguous x and m of one shape: the Python Function's operations,
// in its order and dtype, per element.
template <Map kind>
Tensor mask_map(const Tensor& input, const Tensor& mask, const Coefficients& c) {
  Tensor output = at::empty_like(input, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_dropout", [&] {
    const scalar_t* __restrict__ x = input.const_data_ptr<scalar_t>();
    // a bool is the byte 0 or 1: read as uint8_t, the map needs no branch (vectorised)
    const uint8_t* __restrict__ m = reinterpret_cast<const uint8_t*>(mask.const_data_ptr<bool>());
    scalar_t* __restrict__ y = output.mutable_data_ptr<scalar_t>();
    const auto scale = static_cast<scalar_t>(c.scale);
    const auto slope = static_cast<scalar_t>(c.shift_slope);
    const auto offset = static_cast<scalar_t>(c.shift_offset);
    at::parallel_for(0, input.numel(), 32768, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        auto noise = static_cast<scalar_t>(m[i]);
        if constexpr (kind == Map::kDivide) {
          y[i] = x[i] * (noise / scale);
        } else if constexpr (kind == Map::kScale) {
          y[i] = x[i] * (noise * scale);
        } else {
          y[i] = x[i] * (noise * scale) + ((noise - scalar_t(1)) * slope + offset);
        }
      }
    });
  });
  return output;
}

// Whether the one-pass map applies: first order, plain float tensors, contiguous, one shape.
bool one_pass(const Tensor& input, const Tensor& mask) {
  return !at::GradMode::is_enabled() && fusable(input) && plain(mask) && input.is_contiguous() &&
         mask.is_contiguous() && input.sizes() == mask.sizes();
}

// (a·m, α′a(m − 1) + α′a·p) in dtype, both 0 for p = 1 (_alpha_affine's composite ops).
std::tuple<Tensor, Tensor> alpha_affine(const Tensor& mask, double p, at::ScalarType dtype) {
  Tensor noise = mask.to(dtype);
  if (p == 1) {
    return {noise, noise};
  }
  Coefficients c = alpha_coefficients(p);
  Tensor shift = noise.add(-1).mul_(c.shift_slope).add_(c.shift_offset);
  return {noise.mul_(c.scale), shift};
}

}  // namespace

// Python: manualgrad.functional.dropout.DropoutFunction: y = x ⊙ m/(1 − p), saves m only;
// dL/dx = dL/dy ⊙ m/(1 − p) (keep_scale; p = 1: m itself, all 0).
struct DropoutTwin : public torch::autograd::Function<DropoutTwin> {
  static Tensor map(const Tensor& input, const Tensor& mask, double p) {
    if (p != 1 && one_pass(input, mask)) {
      return mask_map<Map::kDivide>(input, mask, dropout_coefficients(p));
    }
    Tensor noise = mask.to(input.scalar_type());
    return input * (p == 1 ? noise : noise.div_(1 - p));
  }
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Tensor& mask, double p) {
    ctx->saved_data["p"] = p;
    ctx->save_for_backward({mask});
    return map(input, mask, p);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor mask = ctx->get_saved_variables()[0];
    return {map(grads[0], mask, ctx->saved_data["p"].toDouble()), Tensor(), Tensor()};
  }
};

// Python: manualgrad.functional.dropout.AlphaDropoutFunction: y = a·m ⊙ x + b,
// b = α′a(m − 1) + α′a·p (_alpha_affine), saves m only; dL/dx = a · dL/dy ⊙ m.
struct AlphaDropoutTwin : public torch::autograd::Function<AlphaDropoutTwin> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Tensor& mask, double p) {
    ctx->saved_data["p"] = p;
    ctx->save_for_backward({mask});
    if (p != 1 && one_pass(input, mask)) {
      return mask_map<Map::kAffine>(input, mask, alpha_coefficients(p));
    }
    auto [scale, shift] = alpha_affine(mask, p, input.scalar_type());
    return input * scale + shift;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor mask = ctx->get_saved_variables()[0];
    double p = ctx->saved_data["p"].toDouble();
    if (p != 1 && one_pass(grads[0], mask)) {
      return {mask_map<Map::kScale>(grads[0], mask, alpha_coefficients(p)), Tensor(), Tensor()};
    }
    return {grads[0] * std::get<0>(alpha_affine(mask, p, grads[0].scalar_type())), Tensor(),
            Tensor()};
  }
};

Tensor dropout(const Tensor& input, const Tensor& mask, double p) {
  return DropoutTwin::apply(input, mask, p);
}
Tensor alpha_dropout(const Tensor& input, const Tensor& mask, double p) {
  return AlphaDropoutTwin::apply(input, mask, p);
}

}  // namespace manualgrad
