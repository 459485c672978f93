// C++ twin of manualgrad.functional.linear.LinearFunction (see twins.h).

#include "common.h"
#include "twins.h"

namespace manualgrad {

// ---- linear -------------------------------------------------------------------------------

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


Tensor linear(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias) {
  return LinearTwin::apply(input, weight, bias);
}

}  // namespace manualgrad
