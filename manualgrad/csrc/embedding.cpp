// C++ twin of manualgrad.functional.embedding.EmbeddingFunction (see twins.h). The Python
// wrapper (F.embedding) validates the arguments and renormalises max_norm rows first.

#include "common.h"
#include "twins.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace manualgrad {

namespace {

// weight_grad's dense sum, first order, in one pass over the occurrences k in order (as
// index_add): row i_k of fresh zeros += R_k, or R_k / c(i_k) with scale_grad_by_freq (the
// counts in one pass over the indices, as bincount); occurrences of padding_idx are skipped, so
// its row stays 0 (the Python path adds 0 · R_k there). Split over column blocks for
// at::parallel_for: each task owns its columns of every row, so each sum keeps its order at any
// thread count.
Tensor weight_grad_rows(const Tensor& indices, const Tensor& rows, int64_t num_weights,
                        int64_t padding_idx, bool scale_grad_by_freq) {
  Tensor source = rows.contiguous();
  Tensor index = indices.contiguous();
  int64_t count = index.numel(), width = source.size(1);
  Tensor grad = at::zeros({num_weights, width}, source.options());
  AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "manualgrad_embedding_index", [&] {
    const index_t* at_row = index.const_data_ptr<index_t>();
    std::vector<int64_t> counts;
    if (scale_grad_by_freq) {
      counts.assign(num_weights, 0);
      for (int64_t k = 0; k < count; ++k) {
        ++counts[at_row[k]];
      }
    }
    AT_DISPATCH_FLOATING_TYPES(source.scalar_type(), "manualgrad_embedding_grad", [&] {
      using V = Vec<scalar_t>;
      const scalar_t* from = source.const_data_ptr<scalar_t>();
      scalar_t* out = grad.mutable_data_ptr<scalar_t>();
      int64_t columns = at::internal::GRAIN_SIZE / std::max<int64_t>(count, 1);
      int64_t grain = std::max<int64_t>(1, columns);  // columns per task: ~GRAIN_SIZE elements
      at::parallel_for(0, width, grain, [&](int64_t begin, int64_t end) {
        for (int64_t k = 0; k < count; ++k) {
          int64_t row = at_row[k];
          if (row == padding_idx) {
            continue;
          }
          scalar_t* to = out + row * width + begin;
          const scalar_t* term = from + k * width + begin;
          if (scale_grad_by_freq) {
            V frequency(static_cast<scalar_t>(counts[row]));
            at::vec::map2([frequency](V sum, V r) { return sum + r / frequency; }, to, to, term,
                          end - begin);
          } else {
            at::vec::map2([](V sum, V r) { return sum + r; }, to, to, term, end - begin);
          }
        }
      });
    });
  });
  return grad;
}

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
// A first-order dense dL/dW is one pass (weight_grad_rows); else weight_grad's ATen ops.
struct EmbeddingTwin : public TwinFunction<EmbeddingTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& weight,
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

  static variable_list backward(TwinContext* ctx, variable_list grads) {
    variable_list none(5);
    if (!ctx->needs_input_grad(1)) {
      return none;
    }
    Tensor indices = ctx->get_saved_variables()[0].reshape(-1);
    const Tensor& grad = grads[0];
    Tensor rows = grad.reshape({indices.size(0), grad.size(-1)});
    int64_t padding_idx = ctx->saved_data["padding_idx"].toInt();
    int64_t num_weights = ctx->saved_data["num_weights"].toInt();
    bool scale_grad_by_freq = ctx->saved_data["scale_grad_by_freq"].toBool();
    bool sparse = ctx->saved_data["sparse"].toBool();
    if (!sparse && !at::GradMode::is_enabled() && fusable(rows) && plain(indices)) {
      none[1] = weight_grad_rows(indices, rows, num_weights, padding_idx, scale_grad_by_freq);
      return none;
    }
    Tensor keep = padding_idx >= 0 ? indices != padding_idx : Tensor();
    none[1] = weight_grad(indices, rows, num_weights, keep, scale_grad_by_freq, sparse);
    return none;
  }
};

Tensor embedding(const Tensor& input, const Tensor& weight, int64_t padding_idx,
                 bool scale_grad_by_freq, bool sparse) {
  return EmbeddingTwin::apply(input, weight, padding_idx, scale_grad_by_freq, sparse);
}

}  // namespace manualgrad
