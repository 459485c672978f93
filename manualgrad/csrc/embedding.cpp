// C++ twin of manualgrad.functional.embedding.EmbeddingFunction (see twins.h). The Python
// wrapper (F.embedding) validates the arguments and renormalises max_norm rows first.

#include "common.h"
#include "twins.h"

namespace manualgrad {

namespace {

// dL/dW = Σ_k e_{i_k} R_kᵀ for the occurrences k that keep selects (all when undefined): row
// i_k accumulates R_k (index_add), or, with sparse, the same sum uncoalesced as a sparse COO
// (V, D) tensor; scale_grad_by_freq first divides R_k by the count of i_k (as
// embedding._weight_grad).
Tensor weight_grad(const Tensor& indices, Tensor rows, int64_t num_weights, const Tensor& keep,
                   bool scale_grad_by_freq, bool sparse) {
  TORCH_CHECK(!(scale_grad_by_freq && sparse),
              "embedding_backward: scale_grad_by_freq not supported with sparse gradients");
  if (scale_grad_by_freq) {
    Tensor counts = at::bincount(indices, {}, num_weights);
    rows = rows / counts.index_select(0, indices).unsqueeze(1).to(rows.scalar_type());
  }
  std::vector<int64_t> shape{num_weights, rows.size(1)};
  if (sparse) {
    Tensor kept = indices;
    if (keep.defined()) {
      kept = indices.masked_select(keep);
      rows = rows.index_select(0, keep.nonzero().squeeze(1));
    }
    return at::_sparse_coo_tensor_unsafe(kept.unsqueeze(0), rows, shape);
  }
  if (keep.defined()) {
    rows = rows * keep.unsqueeze(1);
  }
  Tensor zeros = rows.new_zeros(shape);
  return plain(rows) && !at::GradMode::is_enabled() ? zeros.index_add_(0, indices, rows)
                                                     : zeros.index_add(0, indices, rows);
}

}  // namespace

// Python: manualgrad.functional.embedding.EmbeddingFunction. y = W[i]; saves the indices only.
struct EmbeddingTwin : public torch::autograd::Function<EmbeddingTwin> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Tensor& weight,
                        int64_t padding_idx, bool scale_grad_by_freq, bool sparse) {
    ctx->saved_data["num_weights"] = weight.size(0);
    ctx->saved_data["padding_idx"] = padding_idx;
    ctx->saved_data["scale_grad_by_freq"] = scale_grad_by_freq;
    ctx->saved_data["sparse"] = sparse;
    ctx->save_for_backward({input});
    std::vector<int64_t> shape = input.sizes().vec();
    shape.push_back(weight.size(1));
    return weight.index_select(0, input.reshape(-1)).reshape(shape);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list none(5);
    if (!ctx->needs_input_grad(1)) {
      return none;
    }
    Tensor indices = ctx->get_saved_variables()[0].reshape(-1);
    const Tensor& grad = grads[0];
    Tensor rows = grad.reshape({indices.size(0), grad.size(-1)});
    int64_t padding_idx = ctx->saved_data["padding_idx"].toInt();
    Tensor keep = padding_idx >= 0 ? indices != padding_idx : Tensor();
    none[1] = weight_grad(indices, rows, ctx->saved_data["num_weights"].toInt(), keep,
                          ctx->saved_data["scale_grad_by_freq"].toBool(),
                          ctx->saved_data["sparse"].toBool());
    return none;
  }
};

Tensor embedding(const Tensor& input, const Tensor& weight, int64_t padding_idx,
                 bool scale_grad_by_freq, bool sparse) {
  return EmbeddingTwin::apply(input, weight, padding_idx, scale_grad_by_freq, sparse);
}

}  // namespace manualgrad
