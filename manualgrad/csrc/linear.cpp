// C++ twins of manualgrad.functional.linear.LinearFunction and
// manualgrad.functional.fused.LinearReLUFunction, LinearGELUFunction (see twins.h).

#include "activations.h"
#include "common.h"
#include "twins.h"

#include <ATen/Parallel.h>

namespace manualgrad {

// ---- linear, linear_relu -----------------------------------------------------------------

// y = x Wᵀ + b (LinearFunction.forward).
Tensor affine(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias) {
  if (input.dim() == 2 && bias.has_value()) {
    return at::addmm(*bias, input, weight.t());
  }
  Tensor output = input.matmul(weight.t());
  return bias.has_value() ? output + *bias : output;
}

// Each gradient of the affine map needs the other operand (the graph's edges exist only when
// grad is on): x if W requires grad, W if x does, then the extra saved tensors.
void save_operands(TwinContext* ctx, const Tensor& input, const Tensor& weight,
                   const std::optional<Tensor>& bias, variable_list extra = {}) {
  variable_list saved{weight.requires_grad() ? input : Tensor(),
                      input.requires_grad() ? weight : Tensor()};
  saved.insert(saved.end(), extra.begin(), extra.end());
  ctx->save_for_backward(saved);
  ctx->saved_data["bias"] = bias.has_value();  // needs_input_grad counts tensor inputs only
}

// (dL/dx, dL/dW, dL/db) from G = dL/dy, each where needed (linear.affine_grads).
variable_list affine_grads(TwinContext* ctx, const Tensor& grad, const variable_list& saved) {
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

// Python: manualgrad.functional.linear.LinearFunction (affine_grads).
struct LinearTwin : public TwinFunction<LinearTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& weight,
                        const std::optional<Tensor>& bias) {
    save_operands(ctx, input, weight, bias);
    return affine(input, weight, bias);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    return affine_grads(ctx, grads[0], ctx->get_saved_variables());
  }
};

// y = max(z, 0) written over the fresh z, and the bool mask m = 1 − 1[y ≤ 0] (NaN: y NaN,
// m 1), in one pass over a contiguous z.
Tensor relu_and_mask_(Tensor& z) {
  if (!fusable(z) || !z.is_contiguous()) {
    z = z.clamp_min(0);
    return at::le(z, 0).logical_not();
  }
  z.clamp_min_(0);  // NaN stays NaN, as max(z, 0) in the Python Function
  Tensor mask = at::empty(z.sizes(), z.options().dtype(at::kBool));
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "manualgrad_relu_mask", [&] {
    const scalar_t* __restrict__ y = z.const_data_ptr<scalar_t>();
    bool* __restrict__ m = mask.mutable_data_ptr<bool>();
    at::parallel_for(0, z.numel(), 32768, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {  // restrict: bool may alias, so say it does not
        m[i] = !(y[i] <= scalar_t(0));
      }
    });
  });
  return mask;
}

// G ⊙ m for a bool mask m: one pass when first order, the product when grad mode is on.
Tensor masked(const Tensor& grad, const Tensor& mask) {
  if (at::GradMode::is_enabled() || !fusable(grad) || !grad.is_contiguous() ||
      !mask.is_contiguous() || grad.sizes() != mask.sizes()) {
    return grad * mask;
  }
  Tensor product = at::empty_like(grad);
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "manualgrad_masked", [&] {
    const scalar_t* __restrict__ g = grad.const_data_ptr<scalar_t>();
    // a bool is the byte 0 or 1: read as uint8_t, the product needs no branch (vectorised)
    const uint8_t* __restrict__ m = reinterpret_cast<const uint8_t*>(mask.const_data_ptr<bool>());
    scalar_t* __restrict__ out = product.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, grad.numel(), 32768, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        out[i] = g[i] * static_cast<scalar_t>(m[i]);
      }
    });
  });
  return product;
}

// Python: manualgrad.functional.fused.LinearReLUFunction: y = max(x Wᵀ + b, 0), saves the bool
// mask m = 1 − 1[y ≤ 0]; the affine gradients of G ⊙ m.
struct LinearReLUTwin : public TwinFunction<LinearReLUTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& weight,
                        const std::optional<Tensor>& bias) {
    Tensor output = affine(input, weight, bias);
    Tensor mask = relu_and_mask_(output);
    save_operands(ctx, input, weight, bias, {mask});
    return output;
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    return affine_grads(ctx, masked(grads[0], saved[2]), saved);
  }
};

// Python: manualgrad.functional.fused.LinearGELUFunction: y = GELU(x Wᵀ + b) (GELU over the
// fresh affine output, in place), saves x, W and b; backward recomputes z = x Wᵀ + b and takes
// the affine gradients of dL/dy ⊙ GELU'(z).
struct LinearGELUTwin : public TwinFunction<LinearGELUTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& weight,
                        const std::optional<Tensor>& bias, std::string approximate) {
    ctx->save_for_backward({input, weight, bias.value_or(Tensor())});
    ctx->saved_data["bias"] = bias.has_value();
    ctx->saved_data["tanh"] = approximate == "tanh";
    return gelu_(affine(input, weight, bias), approximate == "tanh");
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    std::optional<Tensor> bias;
    if (saved[2].defined()) {
      bias = saved[2];
    }
    Tensor pre = affine(saved[0], saved[1], bias);
    Tensor grad_pre = gelu_gradient(pre, grads[0], ctx->saved_data["tanh"].toBool());
    variable_list result = affine_grads(ctx, grad_pre, saved);
    result.emplace_back();  // approximate
    return result;
  }
};

Tensor linear(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias) {
  return LinearTwin::apply(input, weight, bias);
}
Tensor linear_relu(const Tensor& input, const Tensor& weight,
                   const std::optional<Tensor>& bias) {
  return LinearReLUTwin::apply(input, weight, bias);
}
Tensor linear_gelu(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias,
                   std::string approximate) {
  return LinearGELUTwin::apply(input, weight, bias, approximate);
}

}  // namespace manualgrad
