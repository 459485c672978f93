// What activations.cpp shares with the other family files: GELU's one-pass kernels, which
// fused.LinearGELUFunction's twin (linear.cpp) applies to its affine map.

#pragma once

#include <ATen/core/Tensor.h>

namespace manualgrad {

// GELU(z) (GELUFunction's gelu_value, approximate='tanh' when tanh) written over z, a fresh
// plain float tensor, in one pass when it is contiguous; returns z, or a new tensor otherwise.
at::Tensor gelu_(at::Tensor z, bool tanh);

// dL/dz = dL/dy · GELU'(z) (GELUFunction's gelu_derivative): one pass when first order,
// composite (so differentiable again) when grad mode is on.
at::Tensor gelu_gradient(const at::Tensor& z, const at::Tensor& grad, bool tanh);

}  // namespace manualgrad
