// C++ twins of manualgrad.functional.dropout.DropoutFunction and AlphaDropoutFunction (see
// twins.h). The Python wrapper (F.dropout, ...) validates p and draws the bool keep-mask m as
// torch's CPU dropout draws its noise; the twins take m as an input, as the Python Functions do,
// so both paths see the same mask for the same RNG state.
//
// Both are one map y = x·s(m) + t(m) of a bool mask (s, t per dtype, as the Python Function
// computes them): written element by element in one pass where x and m are contiguous and m is
// x's shape or a channel mask (N, C, 1, …), constant along rows of x, else with the Python
// Function's composite ops (p = 1's 0-d mask, grad mode on in backward).

#include <algorithm>
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

// One mask value's map x ↦ x·factor + shift: the noise (m/(1 − p), or m·a and its shift) the
// Python Function computes from m in its order and dtype, then applied as its x·noise (+ shift).
template <Map kind, typename T>
struct MaskValue {
  T factor, shift;
  MaskValue(uint8_t keep, const Coefficients& c) {
    auto noise = static_cast<T>(keep);
    factor = kind == Map::kDivide ? noise / static_cast<T>(c.scale) : noise * static_cast<T>(c.scale);
    shift = (noise - T(1)) * static_cast<T>(c.shift_slope) + static_cast<T>(c.shift_offset);
  }
  T operator()(T x) const {
    return kind == Map::kAffine ? x * factor + shift : x * factor;
  }
};

// The width of x's rows along which m is constant: m's shape is x's on the leading dims and 1
// on the others (dropout's mask: 1; a channel mask (N, C, 1, …): the spatial size), else 0.
int64_t mask_width(const Tensor& input, const Tensor& mask) {
  if (mask.dim() != input.dim()) {
    return 0;
  }
  int64_t dim = 0;
  while (dim < input.dim() && mask.size(dim) == input.size(dim)) {
    ++dim;
  }
  int64_t width = 1;
  for (; dim < input.dim(); ++dim) {
    if (mask.size(dim) != 1) {
      return 0;
    }
    width *= input.size(dim);
  }
  return width;
}

// The map in one pass over a contiguous x and m (m constant along rows of `width`): the Python
// Function's operations, in its order and dtype, per element.
template <Map kind>
Tensor mask_map(const Tensor& input, const Tensor& mask, const Coefficients& c, int64_t width) {
  Tensor output = at::empty_like(input, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_dropout", [&] {
    using Value = MaskValue<kind, scalar_t>;
    const scalar_t* __restrict__ x = input.const_data_ptr<scalar_t>();
    // a bool is the byte 0 or 1: read as uint8_t, the map needs no branch (vectorised)
    const uint8_t* __restrict__ m = reinterpret_cast<const uint8_t*>(mask.const_data_ptr<bool>());
    scalar_t* __restrict__ y = output.mutable_data_ptr<scalar_t>();
    if (width == 1) {
      at::parallel_for(0, input.numel(), 32768, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          y[i] = Value(m[i], c)(x[i]);
        }
      });
      return;
    }
    int64_t grain = std::max<int64_t>(1, 32768 / width);
    at::parallel_for(0, mask.numel(), grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const Value value(m[r], c);
        for (int64_t i = r * width; i < (r + 1) * width; ++i) {
          y[i] = value(x[i]);
        }
      }
    });
  });
  return output;
}

// The width of the one-pass map (mask_width), or 0 where it does not apply: p < 1, first order,
// plain float tensors, contiguous, m constant along rows of x.
int64_t one_pass(const Tensor& input, const Tensor& mask, double p) {
  bool applies = p != 1 && !at::GradMode::is_enabled() && fusable(input) && plain(mask) &&
                 input.is_contiguous() && mask.is_contiguous() && input.numel() > 0;
  return applies ? mask_width(input, mask) : 0;
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
struct DropoutTwin : public TwinFunction<DropoutTwin> {
  static Tensor map(const Tensor& input, const Tensor& mask, double p) {
    int64_t width = one_pass(input, mask, p);
    if (width != 0) {
      return mask_map<Map::kDivide>(input, mask, dropout_coefficients(p), width);
    }
    Tensor noise = mask.to(input.scalar_type());
    return input * (p == 1 ? noise : noise.div_(1 - p));
  }
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& mask, double p) {
    ctx->saved_data["p"] = p;
    ctx->save_for_backward({mask});
    return map(input, mask, p);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    Tensor mask = ctx->get_saved_variables()[0];
    return {map(grads[0], mask, ctx->saved_data["p"].toDouble()), Tensor(), Tensor()};
  }
};

// Python: manualgrad.functional.dropout.AlphaDropoutFunction: y = a·m ⊙ x + b,
// b = α′a(m − 1) + α′a·p (_alpha_affine), saves m only; dL/dx = a · dL/dy ⊙ m.
struct AlphaDropoutTwin : public TwinFunction<AlphaDropoutTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& mask, double p) {
    ctx->saved_data["p"] = p;
    ctx->save_for_backward({mask});
    int64_t width = one_pass(input, mask, p);
    if (width != 0) {
      return mask_map<Map::kAffine>(input, mask, alpha_coefficients(p), width);
    }
    auto [scale, shift] = alpha_affine(mask, p, input.scalar_type());
    return input * scale + shift;
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    Tensor mask = ctx->get_saved_variables()[0];
    double p = ctx->saved_data["p"].toDouble();
    int64_t width = one_pass(grads[0], mask, p);
    if (width != 0) {
      return {mask_map<Map::kScale>(grads[0], mask, alpha_coefficients(p), width), Tensor(),
              Tensor()};
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
