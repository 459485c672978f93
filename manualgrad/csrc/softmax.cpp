// C++ twins of manualgrad.functional.softmax (see twins.h).

#include "common.h"
#include "twins.h"

namespace manualgrad {

// ---- softmax, log_softmax -----------------------------------------------------------------

// z − max_dim z, a fresh tensor (an empty tensor has no max: its copy).
Tensor shifted(const Tensor& input, int64_t dim) {
  if (input.numel() == 0) {
    return input.clone();
  }
  return input - input.amax(dim, true);
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


Tensor softmax(const Tensor& input, int64_t dim) {
  return SoftmaxTwin::apply(input, dim);
}
Tensor log_softmax(const Tensor& input, int64_t dim) {
  return LogSoftmaxTwin::apply(input, dim);
}

}  // namespace manualgrad
