// C++ twins of manualgrad.functional.products.MatmulFunction and AddmmFunction (see twins.h):
// the derivations of their docstrings, op for op. Each gradient is a product of G = dL/dy with
// the other operand (saved only when the operand it serves needs a gradient), hence
// differentiable again: double backward runs the same products under grad mode.

#include "common.h"
#include "twins.h"

namespace manualgrad {

namespace {

// products._as_matrices: a 1-d left operand as a (1, k) row, a 1-d right one as a (k, 1)
// column, and the product's shape with both kept (batch dims broadcast).
struct Matrices {
  std::vector<int64_t> left, right, product;
};

Matrices as_matrices(at::IntArrayRef input, at::IntArrayRef other) {
  Matrices m;
  m.left = input.size() > 1 ? input.vec() : std::vector<int64_t>{1, input[0]};
  m.right = other.size() > 1 ? other.vec() : std::vector<int64_t>{other[0], 1};
  auto left_batch = at::IntArrayRef(m.left).slice(0, m.left.size() - 2);
  auto right_batch = at::IntArrayRef(m.right).slice(0, m.right.size() - 2);
  m.product = at::infer_size(left_batch, right_batch);
  m.product.push_back(m.left[m.left.size() - 2]);
  m.product.push_back(m.right.back());
  return m;
}

// arithmetic.reduce_to: summed over the dims the operand was broadcast along.
Tensor summed_to(const Tensor& grad, const std::vector<int64_t>& shape) {
  return grad.sizes() == at::IntArrayRef(shape) ? grad : grad.sum_to_size(shape);
}

// The tensor `needed_by` needs for its gradient, or an undefined one (save the least).
Tensor if_needed(const Tensor& operand, const Tensor& needed_by) {
  return needed_by.requires_grad() ? operand : Tensor();
}

}  // namespace

// Python: MatmulFunction. y = A·B; saves B if A needs a gradient, A if B does;
// dL/dA = Σ_batch G·Bᵀ, dL/dB = Σ_batch Aᵀ·G (one product over the flattened batch when B has
// no batch dims), each reshaped back to its operand.
struct MatmulTwin : public TwinFunction<MatmulTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& other) {
    ctx->saved_data["input_shape"] = input.sizes().vec();
    ctx->saved_data["other_shape"] = other.sizes().vec();
    ctx->save_for_backward({if_needed(input, other), if_needed(other, input)});
    return at::matmul(input, other);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto input_shape = ctx->saved_data["input_shape"].toIntVector();
    auto other_shape = ctx->saved_data["other_shape"].toIntVector();
    Matrices m = as_matrices(input_shape, other_shape);
    Tensor grad = grads[0].reshape(m.product);
    Tensor grad_input, grad_other;
    // a product whose inner size is 1 (mv's and vdot's dL/dA, vdot's dL/dB) is an outer
    // product: the same single products as a broadcast multiply, without a GEMM call
    if (ctx->needs_input_grad(0)) {
      Tensor right = saved[1].reshape(m.right).mH();
      Tensor rows = m.right.back() == 1 ? grad * right : at::matmul(grad, right);
      grad_input = summed_to(rows, m.left).reshape(input_shape);
    }
    if (ctx->needs_input_grad(1)) {
      Tensor rows;
      if (m.right.size() == 2) {  // no batch on B: one product over the flattened batch
        int64_t count = 1;
        for (size_t d = 0; d + 1 < m.product.size(); ++d) {
          count *= m.product[d];
        }
        Tensor left = saved[0].reshape({count, m.left.back()}).mH();
        Tensor rows_of_grad = grad.reshape({count, m.product.back()});
        rows = count == 1 ? left * rows_of_grad : at::matmul(left, rows_of_grad);
      } else {
        rows = summed_to(at::matmul(saved[0].reshape(m.left).mH(), grad), m.right);
      }
      grad_other = rows.reshape(other_shape);
    }
    return {grad_input, grad_other};
  }
};

// Python: AddmmFunction. y = β·C + α·A·B (addmm, or baddbmm for batches); saves B if A needs a
// gradient, A if B does, never C; dL/dC = β · Σ_broadcast G, dL/dA = α · G·Bᵀ,
// dL/dB = α · Aᵀ·G (a factor 1 is not multiplied: the same values).
struct AddmmTwin : public TwinFunction<AddmmTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& mat1,
                        const Tensor& mat2, const at::Scalar& beta, const at::Scalar& alpha) {
    ctx->saved_data["input_shape"] = input.sizes().vec();
    ctx->saved_data["beta"] = beta.conj();  // conj: as the Python Function (complex numbers)
    ctx->saved_data["alpha"] = alpha.conj();
    ctx->save_for_backward({if_needed(mat1, mat2), if_needed(mat2, mat1)});
    return mat1.dim() == 2 ? at::addmm(input, mat1, mat2, beta, alpha)
                           : at::baddbmm(input, mat1, mat2, beta, alpha);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    const Tensor& grad = grads[0];
    auto saved = ctx->get_saved_variables();
    auto factor = [](const Tensor& value, const at::Scalar& scale) {
      return scale.equal(1) ? value : value * scale;
    };
    Tensor grad_input, grad_mat1, grad_mat2;
    if (ctx->needs_input_grad(0)) {
      grad_input = summed_to(factor(grad, ctx->saved_data["beta"].toScalar()),
                             ctx->saved_data["input_shape"].toIntVector());
    }
    at::Scalar alpha = ctx->saved_data["alpha"].toScalar();
    if (ctx->needs_input_grad(1)) {
      grad_mat1 = factor(at::matmul(grad, saved[1].mH()), alpha);
    }
    if (ctx->needs_input_grad(2)) {
      grad_mat2 = factor(at::matmul(saved[0].mH(), grad), alpha);
    }
    return {grad_input, grad_mat1, grad_mat2, Tensor(), Tensor()};
  }
};

Tensor matmul(const Tensor& input, const Tensor& other) { return MatmulTwin::apply(input, other); }
Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, const Number& beta,
             const Number& alpha) {
  return AddmmTwin::apply(input, mat1, mat2, as_scalar(beta), as_scalar(alpha));
}

}  // namespace manualgrad
