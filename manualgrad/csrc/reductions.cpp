// C++ twins of manualgrad.functional.reductions.SumFunction and MeanFunction (see twins.h): the
// derivations of their docstrings. Nothing is saved but the input's shape and the reduced dims;
// the gradient is dL/dy (over n for the mean) given back the reduced dims and broadcast to the
// input (reductions.spread: a view, no copy).

#include <ATen/WrapDimUtils.h>

#include <set>

#include "common.h"
#include "twins.h"

namespace manualgrad {

namespace {

// reductions.reduced_dims: the non-negative dims the reduction removes, sorted (None or empty:
// all of them).
std::vector<int64_t> reduced_dims(const Dims& dim, int64_t ndim) {
  std::vector<int64_t> listed;
  if (dim.has_value()) {
    if (const int64_t* one = std::get_if<int64_t>(&*dim)) {
      listed = {*one};
    } else {
      listed = std::get<std::vector<int64_t>>(*dim);
    }
  }
  std::set<int64_t> dims;
  for (int64_t d : listed) {
    dims.insert(at::maybe_wrap_dim(d, ndim));
  }
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) {
      dims.insert(d);
    }
  }
  return {dims.begin(), dims.end()};
}

// The dims argument of at::sum / at::mean (None: all).
at::OptionalIntArrayRef as_dims(const Dims& dim, std::vector<int64_t>& storage) {
  if (!dim.has_value()) {
    return std::nullopt;
  }
  if (const int64_t* one = std::get_if<int64_t>(&*dim)) {
    storage = {*one};
  } else {
    storage = std::get<std::vector<int64_t>>(*dim);
  }
  return at::IntArrayRef(storage);
}

// reductions._record: the input's shape, the reduced dims and keepdim on ctx.
void record(TwinContext* ctx, const Tensor& input, const Dims& dim, bool keepdim) {
  ctx->saved_data["shape"] = input.sizes().vec();
  ctx->saved_data["dims"] = reduced_dims(dim, input.dim());
  ctx->saved_data["keepdim"] = keepdim;
}

// reductions.spread: grad given back the reduced dims (unless keepdim) and expanded to the shape.
Tensor spread(TwinContext* ctx, Tensor grad) {
  auto shape = ctx->saved_data["shape"].toIntVector();
  if (!ctx->saved_data["keepdim"].toBool() && !shape.empty()) {
    for (int64_t d : ctx->saved_data["dims"].toIntVector()) {
      grad = grad.unsqueeze(d);
    }
  }
  return grad.expand(shape);
}

}  // namespace

// The forward SumTwin and MeanTwin share: y = Self::reduce(x) over the dims, and what
// reductions._record puts on ctx.
template <typename Self>
struct ReductionTwin : public TwinFunction<Self> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Dims& dim, bool keepdim) {
    std::vector<int64_t> storage;
    Tensor output = Self::reduce(input, as_dims(dim, storage), keepdim);
    record(ctx, input, dim, keepdim);
    return output;
  }
};

// Python: SumFunction. y = Σ_dims x; dL/dx = dL/dy broadcast back over the reduced dims.
struct SumTwin : public ReductionTwin<SumTwin> {
  static Tensor reduce(const Tensor& input, at::OptionalIntArrayRef dims, bool keepdim) {
    return at::sum(input, dims, keepdim);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    return {spread(ctx, grads[0]), Tensor(), Tensor()};
  }
};

// Python: MeanFunction. y = Σ_dims x / n; dL/dx = (dL/dy / n) broadcast back over the dims.
struct MeanTwin : public ReductionTwin<MeanTwin> {
  static Tensor reduce(const Tensor& input, at::OptionalIntArrayRef dims, bool keepdim) {
    return at::mean(input, dims, keepdim);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto shape = ctx->saved_data["shape"].toIntVector();
    int64_t count = 1;  // reductions._count: 1 for a 0-d input
    if (!shape.empty()) {
      for (int64_t d : ctx->saved_data["dims"].toIntVector()) {
        count *= shape[d];
      }
    }
    return {spread(ctx, grads[0] / count), Tensor(), Tensor()};
  }
};

Tensor sum(const Tensor& input, const Dims& dim, bool keepdim) {
  return SumTwin::apply(input, dim, keepdim);
}
Tensor mean(const Tensor& input, const Dims& dim, bool keepdim) {
  return MeanTwin::apply(input, dim, keepdim);
}

}  // namespace manualgrad
