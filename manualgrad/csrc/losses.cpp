// C++ twins of manualgrad.functional.losses (see twins.h): the same derivations, operation for
// operation, as the Python Functions named in each comment (their docstrings hold the math).
// The Python wrappers validate the arguments' metadata; the class-index ranges of cross_entropy
// and nll_loss are checked where the targets are read (their Functions' forward, these twins'
// row loops), so a twin call reads the targets once.

#include "common.h"
#include "twins.h"

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec_convert.h>
#include <c10/util/accumulate.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <initializer_list>
#include <tuple>
#include <vector>

namespace manualgrad {

namespace {

// ---- reductions: manualgrad.functional._reduction -----------------------------------------

// ℓ, Σ ℓ, or Σ ℓ / D (D = denominator, by default the element count), as _reduction.reduce.
Tensor reduce(const Tensor& loss, const std::string& reduction, const Tensor& denominator = {}) {
  if (reduction == "none") {
    return loss;
  }
  if (reduction == "sum") {
    return loss.sum();
  }
  return denominator.defined() ? loss.sum() / denominator : loss.mean();
}

// dL/dℓ from g = dL/d(output), as _reduction.unreduce (an empty 'mean' gives g · 0).
Tensor unreduce(const Tensor& grad, const std::string& reduction, int64_t count,
                const Tensor& denominator = {}) {
  if (reduction != "mean") {
    return grad;
  }
  if (denominator.defined()) {
    return grad / denominator;
  }
  return count == 0 ? grad * 0 : grad / count;
}

// fresh ∘ other, in place when first order, plain, and other broadcasts to fresh's shape (as
// _elementwise.times).
Tensor scaled(Tensor fresh, const Tensor& other) {
  if (fresh.scalar_type() != other.scalar_type() ||
      fresh.sizes() != at::IntArrayRef(at::infer_size(fresh.sizes(), other.sizes()))) {
    return fresh * other;
  }
  return times(std::move(fresh), other);
}

// ---- fused passes: one vectorised loop over a TensorIterator, with a running sum -----------

// One operand of a fused pass along a row of a TensorIterator loop: its base pointer and the
// stride (bytes) between elements. A vector of count ≤ Vec::size() elements is loaded or stored
// at element i; a broadcast operand (stride 0) loads its one value, a partial vector leaves the
// other lanes 0 (load) or memory untouched (store). Dense: every operand of the row is known to
// be contiguous (the stride tests compile away).
template <typename T, bool Dense = false>
struct Operand {
  char* data = nullptr;
  int64_t stride = 0;

  Vec<T> load(int64_t i, int64_t count) const {
    if (Dense || stride == static_cast<int64_t>(sizeof(T))) {
      return Vec<T>::loadu(data + i * stride, count);
    }
    if (stride == 0) {
      return Vec<T>(*reinterpret_cast<const T*>(data));
    }
    T lanes[Vec<T>::size()] = {};
    for (int64_t k = 0; k < count; ++k) {
      lanes[k] = *reinterpret_cast<const T*>(data + (i + k) * stride);
    }
    return Vec<T>::loadu(lanes);
  }

  void store(int64_t i, const Vec<T>& value, int64_t count) const {
    if (Dense || stride == static_cast<int64_t>(sizeof(T))) {
      value.store(data + i * stride, count);
      return;
    }
    T lanes[Vec<T>::size()];
    value.store(lanes);
    for (int64_t k = 0; k < count; ++k) {
      *reinterpret_cast<T*>(data + (i + k) * stride) = lanes[k];
    }
  }

  // A byte operand (bool or int8: values 0, ±1) read into, or written from, a T vector
  // (through int32 lanes when contiguous).
  Vec<T> load_bytes(int64_t i, int64_t count) const {
    if (Dense || stride == 1) {
      auto bytes = Vec<int8_t>::loadu(data + i, count);
      return at::vec::convert<T>(at::vec::convert<int32_t>(bytes));
    }
    T lanes[Vec<T>::size()] = {};
    for (int64_t k = 0; k < count; ++k) {
      lanes[k] = static_cast<T>(*reinterpret_cast<const int8_t*>(data + (i + k) * stride));
    }
    return Vec<T>::loadu(lanes);
  }
  void store_bytes(int64_t i, const Vec<T>& value, int64_t count) const {
    if (Dense || stride == 1) {
      at::vec::convert<int8_t>(at::vec::convert<int32_t>(value)).store(data + i, count);
      return;
    }
    T lanes[Vec<T>::size()];
    value.store(lanes);
    for (int64_t k = 0; k < count; ++k) {
      *reinterpret_cast<int8_t*>(data + (i + k) * stride) = static_cast<int8_t>(lanes[k]);
    }
  }
};

constexpr int kMaxOperands = 6;
// Vectors summed in T before their total joins the double sum (64 additions per lane).
constexpr int64_t kRun = 64;

// A TensorIterator over `outputs` (each already allocated, of any dtype) and the inputs.
at::TensorIterator mixed_iterator(std::initializer_list<const Tensor*> outputs,
                                  std::initializer_list<const Tensor*> inputs) {
  at::TensorIteratorConfig config;
  config.check_all_same_dtype(false);
  for (const Tensor* output : outputs) {
    if (output->defined()) {
      config.add_output(*output);
    }
  }
  for (const Tensor* input : inputs) {
    if (input->defined()) {
      config.add_const_input(*input);
    }
  }
  return config.build();
}

// Σ_k chunk(b_k, e_k) over the fixed chunks [b_k, e_k) = [k·size, (k + 1)·size) ∩ [0, n), each
// chunk a task of at::parallel_for, the partial sums added in chunk order: the same total, bit
// for bit, at any thread count (at::parallel_reduce's ranges depend on it). S: double, or a
// struct of sums with +; one chunk when n ≤ size, so a small loop stays on its thread.
template <typename S, typename Chunk>
S chunked_sum(int64_t n, int64_t size, const Chunk& chunk) {
  int64_t chunks = n > 0 ? (n + size - 1) / size : 0;
  std::vector<S> partial(chunks);
  at::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; ++k) {
      partial[k] = chunk(k * size, std::min(n, (k + 1) * size));
    }
  });
  S total{};
  for (const S& sum : partial) {
    total = total + sum;
  }
  return total;
}

// Σ body(operands, i, count) along one row of size0 elements, added to total: in T over runs of
// kRun vectors, each run's sum then in double (lanes past count dropped). The whole vectors pass
// count as the constant Vec::size(), so the partial-vector branches fold away.
template <typename T, typename Operands, typename Body>
void row_pass(const Operands& operands, int64_t size0, const Body& body, double& total) {
  constexpr int64_t width = Vec<T>::size();
  Vec<T> run(T(0));
  int64_t i = 0;
  for (int64_t n = 1; i + width <= size0; i += width, ++n) {
    run = run + body(operands, i, width);
    if (n == kRun) {
      total += at::vec::vec_reduce_all<T>(plus<T>, run);
      run = Vec<T>(T(0));
      n = 0;
    }
  }
  if (i < size0) {
    int64_t count = size0 - i;
    run = run + Vec<T>::set(Vec<T>(T(0)), body(operands, i, count), count);
  }
  total += at::vec::vec_reduce_all<T>(plus<T>, run);
}

// body(operands, i, count) on every vector of iter's elements (operands: outputs first, then
// inputs, in the iterator's order), in parallel over fixed chunks of GRAIN_SIZE elements;
// returns the sum of what body returns (row_pass: in T over runs of kRun vectors, in double
// across runs and chunks; chunked_sum: independent of the thread count). Rows whose operands
// are all contiguous run with Dense operands.
template <typename T, typename Body>
double fused_pass(at::TensorIteratorBase& iter, const Body& body) {
  int ntensors = iter.ntensors();
  TORCH_INTERNAL_ASSERT(ntensors <= kMaxOperands);
  auto chunk = [&](int64_t begin, int64_t end) {
    double total = 0;
    auto loop = [&](char** data, const int64_t* strides, int64_t size0, int64_t size1) {
      auto rows = [&](auto operands) {
        for (int64_t j = 0; j < size1; ++j) {
          for (int k = 0; k < ntensors; ++k) {
            operands[k] = {data[k] + j * strides[ntensors + k], strides[k]};
          }
          row_pass<T>(operands, size0, body, total);
        }
      };
      bool dense = true;
      for (int k = 0; k < ntensors; ++k) {
        dense = dense && strides[k] == iter.element_size(k);
      }
      if (dense) {
        rows(std::array<Operand<T, true>, kMaxOperands>{});
      } else {
        rows(std::array<Operand<T, false>, kMaxOperands>{});
      }
    };
    iter.serial_for_each(loop, {begin, end});
    return total;
  };
  return chunked_sum<double>(iter.numel(), at::internal::GRAIN_SIZE, chunk);
}

// A 0-d tensor of `value` (a loss reduced on a fused pass), like's dtype.
Tensor scalar_of(double value, const Tensor& like) {
  return at::scalar_tensor(value, like.options());
}

// Whether the fused passes may run on these tensors: plain float/double, one dtype (undefined
// ones skipped).
bool fusable_all(std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = *tensors.begin();
  for (const Tensor* t : tensors) {
    if (t->defined() && (!fusable(*t) || t->scalar_type() != first->scalar_type())) {
      return false;
    }
  }
  return true;
}

// clamp(x, −δ, δ) on each value type.
template <typename T>
Vec<T> clamp_of(const Vec<T>& x, double delta) {
  return at::vec::clamp(x, Vec<T>(static_cast<T>(-delta)), Vec<T>(static_cast<T>(delta)));
}
inline Tensor clamp_of(const Tensor& x, double delta) {
  return x.clamp(-delta, delta);
}

// ---- element-wise regression losses ℓ = w · e(x − t): mse, l1, huber ----------------------

// Reduce w·e(d) (the weighted 'mean' Σ w e / Σ w when Self::mean_over_weight, else Σ w e / n);
// an unweighted 'sum'/'mean' takes Σ e(d) from Self::total(d flattened) when it has one, as
// losses._pointwise_forward.
template <typename Self>
Tensor pointwise_forward(const Tensor& diff, const std::optional<Tensor>& weight,
                         const std::string& reduction, double delta) {
  if (!weight.has_value()) {
    if constexpr (Self::has_total) {
      if (reduction != "none") {
        Tensor summed = Self::total(diff.reshape(-1), delta);
        return reduction == "sum" ? summed : summed / diff.numel();
      }
    }
    return reduce(Self::error(diff, delta), reduction);
  }
  Tensor denominator =
      Self::mean_over_weight && reduction == "mean" ? weight->sum() : Tensor();
  return reduce(Self::error(diff, delta) * *weight, reduction, denominator);
}

// The sign of x (±1, 0; 0 for NaN) as values of x's type.
template <typename T>
Vec<T> sign_of(const Vec<T>& x) {
  return x.gt(Vec<T>(T(0))) - x.lt(Vec<T>(T(0)));
}

// pointwise_forward's (L, d) in one pass over x, t and w: d = x − t written, ℓ = e(d) · w written
// ('none') or summed in double (the 'mean' then divided by Σ w or n as above), and with `sign`
// sign(d) written as int8 (L1's saved state).
struct PointwiseForward {
  Tensor loss, diff, sign;
};
template <typename Self>
PointwiseForward pointwise_fused(const Tensor& input, const Tensor& target, const Tensor& weight,
                                 const std::string& reduction, double delta, bool sign) {
  bool none = reduction == "none";
  bool weighted = weight.defined();
  auto shape = at::infer_size(input.sizes(), target.sizes());
  PointwiseForward out{none ? at::empty(shape, input.options()) : Tensor(),
                       at::empty(shape, input.options()),
                       sign ? at::empty(shape, input.options().dtype(at::kChar)) : Tensor()};
  auto iter = mixed_iterator({&out.diff, &out.loss, &out.sign}, {&input, &target, &weight});
  double total = 0;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_pointwise_loss", [&] {
    using V = Vec<scalar_t>;
    const int x = 1 + none + sign;
    total = fused_pass<scalar_t>(iter, [&](const auto& o, int64_t i, int64_t count) {
      V d = o[x].load(i, count) - o[x + 1].load(i, count);
      o[0].store(i, d, count);
      if (sign) {
        o[1 + none].store_bytes(i, sign_of(d), count);
      }
      V loss = Self::error(d, delta);
      if (weighted) {
        loss = loss * o[x + 2].load(i, count);
      }
      if (none) {
        o[1].store(i, loss, count);
        return V(scalar_t(0));
      }
      return loss;
    });
  });
  if (reduction == "sum") {
    out.loss = scalar_of(total, input);
  } else if (reduction == "mean") {
    out.loss = weighted && Self::mean_over_weight
                   ? scalar_of(total, input) / weight.sum()
                   : scalar_of(total / static_cast<double>(out.diff.numel()), input);
  }
  return out;
}

// Self::slope(g · w, state) in one pass (g 0-d or state-shaped, w optional; the state d, or
// L1's int8 sign).
template <typename Self>
Tensor slope_fused(const Tensor& g, const Tensor& weight, const Tensor& state, double delta) {
  bool weighted = weight.defined();
  bool bytes = state.scalar_type() == at::kChar;
  Tensor grad = at::empty(state.sizes(), g.options());
  auto iter = mixed_iterator({&grad}, {&g, &state, &weight});
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "manualgrad_pointwise_slope", [&] {
    using V = Vec<scalar_t>;
    fused_pass<scalar_t>(iter, [&](const auto& o, int64_t i, int64_t count) {
      V gw = o[1].load(i, count);
      if (weighted) {
        gw = gw * o[3].load(i, count);
      }
      V value = bytes ? o[2].load_bytes(i, count) : o[2].load(i, count);
      o[0].store(i, Self::slope(gw, value, delta), count);
      return V(scalar_t(0));
    });
  });
  return grad;
}

}  // namespace

// The Function of ℓ = w · e(x − t): outputs (L, d = x − t), d hidden (double backward flows
// through it). Saves Self::state(d) if it has one, else d — or x and t when the broadcast d is
// bigger than both — and the weight; dL/dx = Self::slope(g, state), dL/dt = −dL/dx,
// dL/dw = g · Self::value(state) (losses._pointwise_setup / _pointwise_backward). The forward
// and a first-order dL/dx are one pass each (pointwise_fused, slope_fused) when the tensors are
// plain float/double of one dtype.
template <typename Self>
struct PointwiseLoss : public TwinFunction<Self> {
  static variable_list forward(TwinContext* ctx, const Tensor& input, const Tensor& target,
                               const std::optional<Tensor>& weight, std::string reduction,
                               double delta) {
    Tensor w = weight.value_or(Tensor());
    bool weight_grad = w.defined() && w.requires_grad();
    bool sign = Self::sign_state && !weight_grad;
    PointwiseForward out;
    if (fusable_all({&input, &target, &w})) {
      out = pointwise_fused<Self>(input, target, w, reduction, delta, sign);
    } else {
      out.diff = input - target;
      out.loss = pointwise_forward<Self>(out.diff, weight, reduction, delta);
    }
    const Tensor& diff = out.diff;
    ctx->set_materialize_grads(false);
    ctx->saved_data["reduction"] = reduction;
    ctx->saved_data["delta"] = delta;
    ctx->saved_data["input_shape"] = input.sizes().vec();
    ctx->saved_data["target_shape"] = target.sizes().vec();
    ctx->saved_data["shape"] = diff.sizes().vec();
    Tensor state = out.sign.defined() ? out.sign : Self::state(diff, weight_grad);
    if (!state.defined() && diff.numel() > input.numel() + target.numel()) {
      ctx->save_for_backward({Tensor(), input, target, w});
    } else {
      ctx->save_for_backward({state.defined() ? state : diff, Tensor(), Tensor(), w});
    }
    return {out.loss, diff};
  }

  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    Tensor state = saved[0].defined() ? saved[0] : saved[1] - saved[2];
    const Tensor& weight = saved[3];
    std::string reduction = ctx->saved_data["reduction"].toStringRef();
    double delta = ctx->saved_data["delta"].toDouble();
    auto shape = ctx->saved_data["shape"].toIntVector();
    bool needs_input = ctx->needs_input_grad(0);
    bool needs_target = ctx->needs_input_grad(1);
    bool needs_weight = weight.defined() && ctx->needs_input_grad(2);
    Tensor grad_d = grads[1];
    Tensor grad_weight;
    if (grads[0].defined()) {
      bool by_weight = weight.defined() && Self::mean_over_weight && reduction == "mean";
      Tensor denominator = by_weight ? weight.sum() : Tensor();
      Tensor g = unreduce(grads[0], reduction, c10::multiply_integers(shape), denominator);
      if (needs_input || needs_target) {
        Tensor term;
        auto state_type = Self::sign_state ? at::kChar : g.scalar_type();
        if (!grad_d.defined() && !at::GradMode::is_enabled() && fusable_all({&g, &weight}) &&
            plain(state) && state.scalar_type() == state_type) {
          term = slope_fused<Self>(g, weight, state, delta);
        } else {
          term = Self::slope(weight.defined() ? g * weight : g, state, delta);
        }
        grad_d = grad_d.defined() ? grad_d + term : term;
      }
      if (needs_weight) {
        Tensor loss = Self::value(state, delta);
        if (by_weight) {
          loss = loss - (loss * weight).sum() / denominator;
        }
        grad_weight = (g * loss).sum_to_size(weight.sizes());
      }
    }
    Tensor grad_input, grad_target;
    if (grad_d.defined()) {
      if (needs_input) {
        grad_input = grad_d.sum_to_size(ctx->saved_data["input_shape"].toIntVector());
      }
      if (needs_target) {
        grad_target = (-grad_d).sum_to_size(ctx->saved_data["target_shape"].toIntVector());
      }
    }
    return {grad_input, grad_target, grad_weight, Tensor(), Tensor()};
  }
};

// Python: manualgrad.functional.losses.MSELossFunction. e(d) = d², e'(d) = 2d; Σ d² = d·d.
struct MSELossTwin : public PointwiseLoss<MSELossTwin> {
  static constexpr bool mean_over_weight = true;
  static constexpr bool has_total = true;
  static constexpr bool sign_state = false;
  static Tensor error(const Tensor& diff, double) {
    return diff.square();
  }
  template <typename T>
  static Vec<T> error(const Vec<T>& diff, double) {
    return diff * diff;
  }
  static Tensor total(const Tensor& diff, double) {
    return at::dot(diff, diff);
  }
  static Tensor state(const Tensor&, bool) {
    return Tensor();
  }
  template <typename V>
  static V slope(const V& g, const V& diff, double) {
    return (constant(g, 2) * g) * diff;
  }
  static Tensor value(const Tensor& diff, double) {
    return diff.square();
  }
};

// Python: manualgrad.functional.losses.L1LossFunction. e(d) = |d|, e'(d) = sign(d), saved as
// int8 (d itself when the weight needs a gradient, which reads |d|).
struct L1LossTwin : public PointwiseLoss<L1LossTwin> {
  static constexpr bool mean_over_weight = true;
  static constexpr bool has_total = false;
  static constexpr bool sign_state = true;
  template <typename V>
  static V error(const V& diff, double) {
    return diff.abs();
  }
  static Tensor state(const Tensor& diff, bool weight_grad) {
    return weight_grad ? diff : diff.sign().to(at::kChar);
  }
  static Tensor slope(const Tensor& g, const Tensor& state, double) {
    return g * (state.is_floating_point() ? state.sign() : state);
  }
  template <typename T>  // the state is sign(d) (int8, read as T)
  static Vec<T> slope(const Vec<T>& g, const Vec<T>& sign, double) {
    return g * sign;
  }
  static Tensor value(const Tensor& state, double) {
    return state.abs();
  }
};

// Python: manualgrad.functional.losses.HuberLossFunction. With c = clamp(d, −δ, δ):
// e(d) = c (d − ½ c), e'(d) = c; Σ e(d) = c·d − ½ c·c.
struct HuberLossTwin : public PointwiseLoss<HuberLossTwin> {
  static constexpr bool mean_over_weight = false;
  static constexpr bool has_total = true;
  static constexpr bool sign_state = false;
  template <typename V>
  static V error(const V& diff, double delta) {
    V clamped = clamp_of(diff, delta);
    return clamped * (diff - constant(diff, 0.5) * clamped);
  }
  static Tensor total(const Tensor& diff, double delta) {
    Tensor clamped = diff.clamp(-delta, delta);
    return at::dot(clamped, diff) - 0.5 * at::dot(clamped, clamped);
  }
  static Tensor state(const Tensor&, bool) {
    return Tensor();
  }
  static Tensor slope(const Tensor& g, const Tensor& diff, double delta) {
    return scaled(diff.clamp(-delta, delta), g);
  }
  template <typename T>
  static Vec<T> slope(const Vec<T>& g, const Vec<T>& diff, double delta) {
    return clamp_of(diff, delta) * g;
  }
  static Tensor value(const Tensor& diff, double delta) {
    return error(diff, delta);
  }
};

namespace {

// ---- cross-entropy and negative log-likelihood over a class dimension ----------------------

// Classes are dim 0 of an unbatched (C,) input, dim 1 of (N, C, d1, ..., dK).
int64_t class_dim(const Tensor& input) {
  return input.dim() == 1 ? 0 : 1;
}

// A (C,) class weight viewed to broadcast along dim of like.
Tensor along_classes(const Tensor& weight, const Tensor& like, int64_t dim) {
  std::vector<int64_t> shape(like.dim() - dim, 1);
  shape[0] = -1;
  return weight.view(shape);
}

// (class index with ignored samples sent to class 0, not-ignored mask, per-sample class weight
// w_{t_i}, 0 where ignored), as losses._picked.
struct Picked {
  Tensor index, valid, weight;
};
Picked picked(const Tensor& target, const Tensor& weight, int64_t ignore_index,
              at::ScalarType dtype) {
  Tensor valid = target != ignore_index;
  Tensor index = at::where(valid, target, 0).to(at::kLong);
  if (!weight.defined()) {
    return {index, valid, valid.to(dtype)};
  }
  Tensor at_target = weight.index_select(0, index.reshape(-1)).view(index.sizes());
  return {index, valid, at::where(valid, at_target, 0)};
}

// values[i, t_i] along dim (0 where ignored), as losses._pick.
Tensor pick(const Tensor& values, const Picked& p, int64_t dim) {
  return at::where(p.valid, values.gather(dim, p.index.unsqueeze(dim)).squeeze(dim), 0);
}

// zeros with values (keepdim) written at the class index along dim: in place on the fresh
// zeros unless the values are batched (losses._scattered).
Tensor scattered(Tensor zeros, int64_t dim, const Tensor& index, const Tensor& values) {
  if (!plain(values)) {
    return zeros.scatter(dim, index.unsqueeze(dim), values);
  }
  return zeros.scatter_(dim, index.unsqueeze(dim), values);
}

// g_i = dL/dℓ_i ('mean': g / Σ w_t), 0 for ignored samples (losses._per_sample_grad).
Tensor per_sample_grad(const Tensor& grad_loss, const std::string& reduction, const Picked& p) {
  Tensor g = reduction == "mean" ? grad_loss / p.weight.sum() : grad_loss;
  return at::where(p.valid, g, 0);
}

// ---- one-pass row kernels: a contiguous (N, C) input, int64 targets, first order ----------

// Whether the row kernels may run: x a contiguous (N, C) float/double tensor (plain), int64
// targets, a contiguous class weight of x's dtype if any.
bool row_kernel(const Tensor& x, const Tensor& target, const Tensor& weight) {
  return x.dim() == 2 && x.numel() > 0 && fusable(x) && x.is_contiguous() &&
         target.scalar_type() == at::kLong && plain(target) &&
         (!weight.defined() || (weight.scalar_type() == x.scalar_type() &&
                                weight.is_contiguous() && plain(weight)));
}

// D = Σ_{i not ignored} w_{t_i} in double, one loop (the targets in range, contiguous int64).
template <typename T>
double total_weight(const int64_t* t, const T* w, int64_t rows, int64_t ignore_index) {
  double total = 0;
  for (int64_t i = 0; i < rows; ++i) {
    total += t[i] == ignore_index ? 0.0 : (w ? static_cast<double>(w[t[i]]) : 1.0);
  }
  return total;
}

// Rows per task of at::parallel_for: about 32k elements.
int64_t grain(int64_t width) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(width, 1));
}

// Σ_i ℓ_i in double over the rows, in parallel (chunked_sum), ℓ_i = row_loss(i) (a T) also
// written to loss when it has the rows ('none'; an empty tensor otherwise).
template <typename T, typename RowLoss>
double row_losses(int64_t rows, int64_t width, const Tensor& loss, const RowLoss& row_loss) {
  T* l = loss.numel() ? loss.mutable_data_ptr<T>() : nullptr;
  return chunked_sum<double>(rows, grain(width), [&](int64_t begin, int64_t end) {
    double sum = 0;
    for (int64_t i = begin; i < end; ++i) {
      T value = row_loss(i);
      if (l) {
        l[i] = value;
      }
      sum += value;
    }
    return sum;
  });
}

// A row kernel's L: the per-row loss ('none'), Σ ℓ ('sum') or Σ ℓ / rows ('mean').
Tensor rows_reduced(double total, const std::string& reduction, int64_t rows,
                    const Tensor& loss) {
  if (reduction == "none") {
    return loss;
  }
  return scalar_of(reduction == "sum" ? total : total / static_cast<double>(rows), loss);
}

// The error of an out-of-range class index, as _loss_checks.check_class_range's.
[[noreturn]] void out_of_bounds(int64_t target) {
  C10_THROW_ERROR(IndexError, c10::str("Target ", target, " is out of bounds."));
}

// _loss_checks.check_class_range on the composite paths (any target dtype and shape): every
// class index in [0, C) or ignore_index, else the first other one (in target order) raised.
void check_class_range(const Tensor& target, int64_t classes, int64_t ignore_index) {
  if (target.numel() == 0) {
    return;
  }
  auto [lowest, highest] = at::aminmax(target);  // one pass: the common, valid case ends here
  if (lowest.item<int64_t>() >= 0 && highest.item<int64_t>() < classes) {
    return;
  }
  Tensor bad = (target < 0).logical_or_(target >= classes).logical_and_(target != ignore_index);
  Tensor found = target.masked_select(bad);
  if (found.numel() > 0) {
    out_of_bounds(found[0].item<int64_t>());
  }
}

// Σ ℓ and D = Σ w_t of a class-index row loop, in double, and its first row whose target is
// out of range (−1: none).
struct Totals {
  double loss = 0, weight = 0;
  int64_t bad = -1;
  Totals operator+(const Totals& other) const {
    return {loss + other.loss, weight + other.weight, bad >= 0 ? bad : other.bad};
  }
};

// The row loop of a class-index loss over contiguous int64 targets t (rows of `cost` elements'
// work): each t_i is checked first — in [0, C) or ignore_index, else the first such row (in
// row order) is raised after the loop, as _loss_checks.check_class_range — then
// ℓ_i = row_loss(i, valid, w_{t_i}) (w_t = 0 if ignored, 1 unweighted) written ('none') or
// summed with D in double over fixed chunks (chunked_sum). Returns the per-row loss ('none'),
// Σ ℓ ('sum') or Σ ℓ / D ('mean'), in a tensor of its own size.
template <typename T, typename RowLoss>
Tensor class_rows(const int64_t* t, const T* w, int64_t classes, int64_t cost,
                  int64_t ignore_index, const std::string& reduction,
                  const at::TensorOptions& options, int64_t rows, const RowLoss& row_loss) {
  bool none = reduction == "none";
  Tensor loss = none ? at::empty({rows}, options) : at::empty({}, options);
  T* l = none ? loss.mutable_data_ptr<T>() : nullptr;
  Totals totals = chunked_sum<Totals>(rows, grain(cost), [&](int64_t begin, int64_t end) {
    Totals sums;
    for (int64_t i = begin; i < end; ++i) {
      bool valid = t[i] != ignore_index;
      if (valid && (t[i] < 0 || t[i] >= classes)) {
        sums.bad = i;
        break;
      }
      T picked = valid ? (w ? w[t[i]] : T(1)) : T(0);
      T value = row_loss(i, valid, picked);
      if (l) {
        l[i] = value;
      }
      sums = sums + Totals{static_cast<double>(value), static_cast<double>(picked)};
    }
    return sums;
  });
  if (totals.bad >= 0) {
    out_of_bounds(t[totals.bad]);
  }
  if (!none) {
    double total = reduction == "sum" ? totals.loss : totals.loss / totals.weight;
    *loss.mutable_data_ptr<T>() = static_cast<T>(total);
  }
  return loss;
}

// CrossEntropyFunction's forward with ε = 0, one pass per row (class_rows): m = max x,
// p = e^{x − m} / s (s = Σ e^{x − m}) written, ℓ_i = (m + log s − x_{t_i}) w_{t_i} (0 if
// ignored) written ('none') or summed with D in double.
std::tuple<Tensor, Tensor> cross_entropy_rows(const Tensor& input, const Tensor& target,
                                              const Tensor& weight, const std::string& reduction,
                                              int64_t ignore_index) {
  int64_t rows = input.size(0), width = input.size(1);
  Tensor probability = at::empty_like(input);
  Tensor loss;
  Tensor targets = target.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_cross_entropy", [&] {
    using V = Vec<scalar_t>;
    const scalar_t* x = input.const_data_ptr<scalar_t>();
    const scalar_t* w = weight.defined() ? weight.const_data_ptr<scalar_t>() : nullptr;
    const int64_t* t = targets.const_data_ptr<int64_t>();
    scalar_t* p = probability.mutable_data_ptr<scalar_t>();
    loss = class_rows(t, w, width, width, ignore_index, reduction, input.options(), rows,
                      [&](int64_t i, bool valid, scalar_t picked) {
                        const scalar_t* row = x + i * width;
                        scalar_t* out = p + i * width;
                        scalar_t m = row_max(row, width);
                        at::vec::map([m](V v) { return (v - V(m)).exp(); }, out, row, width);
                        scalar_t s = row_sum(out, width);
                        at::vec::map([s](V v) { return v / V(s); }, out, out, width);
                        return valid ? ((m + std::log(s)) - row[t[i]]) * picked : scalar_t(0);
                      });
  });
  return {loss, probability};
}

// dL/dx of CrossEntropyFunction with ε = 0 and no gradient reaching p, one pass per row:
// p (g_i w_{t_i}) − g_i w_{t_i} 1[k = t_i], g = dL/dℓ (per sample for 'none', else one value;
// 'mean': divided by D, recomputed).
Tensor cross_entropy_grad_rows(const Tensor& probability, const Tensor& target,
                               const Tensor& weight, const Tensor& grad_loss,
                               const std::string& reduction, int64_t ignore_index) {
  int64_t rows = probability.size(0), width = probability.size(1);
  Tensor grad_input = at::empty_like(probability);
  Tensor targets = target.contiguous();
  Tensor per_sample = grad_loss.to(probability.scalar_type()).contiguous();
  bool one = per_sample.numel() == 1;
  AT_DISPATCH_FLOATING_TYPES(probability.scalar_type(), "manualgrad_cross_entropy_grad", [&] {
    using V = Vec<scalar_t>;
    const scalar_t* p = probability.const_data_ptr<scalar_t>();
    const scalar_t* w = weight.defined() ? weight.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gs = per_sample.const_data_ptr<scalar_t>();
    const int64_t* t = targets.const_data_ptr<int64_t>();
    scalar_t* out = grad_input.mutable_data_ptr<scalar_t>();
    scalar_t mean = gs[0];
    if (reduction == "mean") {
      mean = mean / static_cast<scalar_t>(total_weight(t, w, rows, ignore_index));
    }
    at::parallel_for(0, rows, grain(width), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        bool valid = t[i] != ignore_index;
        scalar_t gi = valid ? (one ? mean : gs[i]) : scalar_t(0);
        scalar_t picked = valid ? (w ? w[t[i]] : scalar_t(1)) : scalar_t(0);
        scalar_t at_target = (scalar_t(-1) * gi) * picked;  // (ε − 1) g w_t
        scalar_t scale = -at_target;
        at::vec::map([scale](V v) { return v * V(scale); }, out + i * width, p + i * width,
                     width);
        if (valid) {
          out[i * width + t[i]] += at_target;
        }
      }
    });
  });
  return grad_input;
}

// NLLLossFunction's L in one loop over the rows (class_rows): ℓ_i = −x_{i,t_i} w_{t_i} (0 if
// ignored) written ('none'), or Σ ℓ and D summed in double ('sum': Σ ℓ, 'mean': Σ ℓ / D).
Tensor nll_rows(const Tensor& input, const Tensor& target, const Tensor& weight,
                const std::string& reduction, int64_t ignore_index) {
  int64_t rows = input.size(0), width = input.size(1);
  Tensor loss;
  Tensor targets = target.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_nll", [&] {
    const scalar_t* x = input.const_data_ptr<scalar_t>();
    const scalar_t* w = weight.defined() ? weight.const_data_ptr<scalar_t>() : nullptr;
    const int64_t* t = targets.const_data_ptr<int64_t>();
    loss = class_rows(t, w, width, 1, ignore_index, reduction, input.options(), rows,
                      [&](int64_t i, bool valid, scalar_t picked) {
                        return -(valid ? x[i * width + t[i]] : scalar_t(0)) * picked;
                      });
  });
  return loss;
}

// NLLLossFunction's dL/dx: −g_i w_{t_i} at (i, t_i), 0 elsewhere, in one pass; g = dL/dℓ
// (per sample for 'none', else one value; 'mean': divided by D, recomputed).
Tensor nll_grad_rows(at::IntArrayRef shape, const Tensor& target, const Tensor& weight,
                     const Tensor& grad_loss, const std::string& reduction,
                     int64_t ignore_index) {
  int64_t rows = shape[0], width = shape[1];
  Tensor grad_input = at::empty(shape, grad_loss.options());
  Tensor targets = target.contiguous();
  Tensor per_sample = grad_loss.contiguous();
  bool one = per_sample.numel() == 1;
  AT_DISPATCH_FLOATING_TYPES(grad_loss.scalar_type(), "manualgrad_nll_grad", [&] {
    const scalar_t* w = weight.defined() ? weight.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gs = per_sample.const_data_ptr<scalar_t>();
    const int64_t* t = targets.const_data_ptr<int64_t>();
    scalar_t* out = grad_input.mutable_data_ptr<scalar_t>();
    scalar_t mean = gs[0];
    if (reduction == "mean") {
      mean = mean / static_cast<scalar_t>(total_weight(t, w, rows, ignore_index));
    }
    // each row zeroed (memset) and its target entry written: one pass over dL/dx
    at::parallel_for(0, rows, grain(width), [&](int64_t begin, int64_t end) {
      std::memset(out + begin * width, 0, sizeof(scalar_t) * (end - begin) * width);
      for (int64_t i = begin; i < end; ++i) {
        if (t[i] != ignore_index) {
          out[i * width + t[i]] = -(one ? mean : gs[i]) * (w ? w[t[i]] : scalar_t(1));
        }
      }
    });
  });
  return grad_input;
}

}  // namespace

// Python: manualgrad.functional.losses.CrossEntropyFunction (class-index targets). Outputs
// (L, p), p hidden; saves p, the target and the weight. The forward checks the targets' range
// (class_rows, or check_class_range on the composite path).
struct CrossEntropyTwin : public TwinFunction<CrossEntropyTwin> {
  static variable_list forward(TwinContext* ctx, const Tensor& input, const Tensor& target,
                               const std::optional<Tensor>& weight_arg, std::string reduction,
                               int64_t ignore_index, double smoothing) {
    Tensor weight = weight_arg.value_or(Tensor());
    ctx->set_materialize_grads(false);
    ctx->saved_data["reduction"] = reduction;
    ctx->saved_data["ignore_index"] = ignore_index;
    ctx->saved_data["smoothing"] = smoothing;
    if (smoothing == 0 && row_kernel(input, target, weight)) {
      auto [loss, probability] =
          cross_entropy_rows(input, target, weight, reduction, ignore_index);
      ctx->save_for_backward({probability, target, weight});
      return {loss, probability};
    }
    int64_t dim = class_dim(input);
    check_class_range(target, input.size(dim), ignore_index);
    // m = max_c x, s = Σ_c e^{x − m}, p = e^{x − m} / s, m + log s = x − log p
    Tensor shift = input.numel() ? input.amax(dim, true) : input.sum(dim, true);
    Tensor probability = (input - shift).exp_();
    Tensor total = probability.sum(dim, true);
    probability.div_(total);
    Tensor log_norm = (shift + total.log_()).squeeze(dim);
    Picked p = picked(target, weight, ignore_index, input.scalar_type());
    Tensor loss = at::where(p.valid, (log_norm - pick(input, p, dim)) * p.weight, 0);
    if (smoothing != 0) {
      Tensor weighted = weight.defined() ? (input * along_classes(weight, input, dim)).sum(dim)
                                         : input.sum(dim);
      Tensor spread = weight.defined() ? log_norm * weight.sum() : log_norm * input.size(dim);
      Tensor smooth = at::where(p.valid, spread - weighted, 0);
      loss = (1 - smoothing) * loss + (smoothing / input.size(dim)) * smooth;
    }
    ctx->save_for_backward({probability, target, weight});
    return {reduce(loss, reduction, p.weight.sum()), probability};
  }

  static variable_list backward(TwinContext* ctx, variable_list grads) {
    const Tensor& grad_loss = grads[0];
    const Tensor& grad_probability = grads[1];
    variable_list none(6);
    if (!grad_loss.defined() && !grad_probability.defined()) {
      return none;
    }
    auto saved = ctx->get_saved_variables();
    const Tensor& probability = saved[0];
    const Tensor& weight = saved[2];
    int64_t dim = class_dim(probability);
    double smoothing = ctx->saved_data["smoothing"].toDouble();
    // dL/d log p (G), then dL/dx = G − p Σ_c G_c; a gradient reaching p adds dL/dp ∘ p to G.
    int64_t ignore_index = ctx->saved_data["ignore_index"].toInt();
    const std::string& reduction = ctx->saved_data["reduction"].toStringRef();
    if (!grad_probability.defined() && smoothing == 0 && !at::GradMode::is_enabled() &&
        plain(grad_loss) && row_kernel(probability, saved[1], weight)) {
      none[0] = cross_entropy_grad_rows(probability, saved[1], weight, grad_loss, reduction,
                                        ignore_index);
      return none;
    }
    Tensor grad = grad_probability.defined() ? grad_probability * probability : Tensor();
    if (grad_loss.defined()) {
      Picked p = picked(saved[1], weight, ignore_index, probability.scalar_type());
      Tensor g = per_sample_grad(grad_loss, reduction, p);
      Tensor at_target = ((smoothing - 1) * g * p.weight).unsqueeze(dim);
      if (!grad.defined() && smoothing == 0) {
        // G is −g w_t at the target only, Σ_c G = −g w_t: dL/dx = p (g w_t) + G.
        Tensor grad_input = probability * -at_target;
        Tensor index = p.index.unsqueeze(dim);
        none[0] = plain(at_target) ? grad_input.scatter_add_(dim, index, at_target)
                                   : grad_input.scatter_add(dim, index, at_target);
        return none;
      }
      Tensor term = scattered(at::zeros_like(probability), dim, p.index, at_target);
      if (smoothing != 0) {
        Tensor spread = g.unsqueeze(dim) * (smoothing / probability.size(dim));
        if (weight.defined()) {
          spread = spread * along_classes(weight, probability, dim);
        }
        term = term - spread;
      }
      grad = grad.defined() ? grad + term : term;
    }
    none[0] = grad - probability * grad.sum(dim, true);
    return none;
  }
};

namespace {

// ---- cross-entropy with class-probability targets -----------------------------------------

// z − m − log Σ e^{z − m} along dim (m = max z; an empty input copied), as
// softmax.log_softmax_values.
Tensor log_softmax_values(const Tensor& input, int64_t dim) {
  Tensor shifted = input.numel() ? input - input.amax(dim, true) : input.clone();
  return shifted.sub_(shifted.exp().sum(dim, true).log_());
}

// t' = (1 − ε) t + ε / C (t itself when ε = 0), as losses._smoothed.
Tensor smoothed(const Tensor& target, double smoothing, int64_t classes) {
  return smoothing != 0 ? target * (1 - smoothing) + smoothing / classes : target;
}

// Whether the probability-target row kernels may run: x and t contiguous (N, C) tensors of one
// float/double dtype (plain), a contiguous class weight of that dtype if any.
bool probability_rows(const Tensor& x, const Tensor& target, const Tensor& weight) {
  return x.dim() == 2 && x.numel() > 0 && x.is_contiguous() && target.defined() &&
         target.is_contiguous() &&
         (!weight.defined() || weight.is_contiguous()) && fusable_all({&x, &target, &weight});
}

// q = w t' at classes c.. of one row (w optional), in the Python Function's order:
// t' = t (1 − ε) + ε / C when smoothing, else t.
template <typename T>
struct RowTargets {
  const T* t;
  const T* w;
  double smoothing;
  int64_t classes;

  Vec<T> at(int64_t c, int64_t count) const {
    Vec<T> q = Vec<T>::loadu(t + c, count);
    if (smoothing != 0) {
      q = q * Vec<T>(static_cast<T>(1 - smoothing)) + Vec<T>(static_cast<T>(smoothing / classes));
    }
    return w ? q * Vec<T>::loadu(w + c, count) : q;
  }
};

// CrossEntropyProbsFunction's forward, one row at a time: m = max x, log p = (x − m) −
// log Σ e^{x − m} written, ℓ_i = −Σ_c q_ic log p_ic written ('none') or summed in double
// ('mean' over the N rows).
std::tuple<Tensor, Tensor> cross_entropy_probability_rows(const Tensor& input,
                                                          const Tensor& target,
                                                          const Tensor& weight,
                                                          const std::string& reduction,
                                                          double smoothing) {
  int64_t rows = input.size(0), width = input.size(1);
  bool none = reduction == "none";
  Tensor log_p = at::empty_like(input);
  Tensor loss = at::empty({none ? rows : 0}, input.options());
  double total = 0;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_cross_entropy_probs", [&] {
    using V = Vec<scalar_t>;
    constexpr int64_t step = V::size();
    const scalar_t* x = input.const_data_ptr<scalar_t>();
    const scalar_t* t = target.const_data_ptr<scalar_t>();
    const scalar_t* w = weight.defined() ? weight.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* out = log_p.mutable_data_ptr<scalar_t>();
    total = row_losses<scalar_t>(rows, width, loss, [&](int64_t i) {
      const scalar_t* row = x + i * width;
      scalar_t* lp = out + i * width;
      RowTargets<scalar_t> q{t + i * width, w, smoothing, width};
      scalar_t m = row_max(row, width);
      at::vec::map([m](V v) { return (v - V(m)).exp(); }, lp, row, width);
      V log_s(std::log(row_sum(lp, width)));
      V dot(scalar_t(0));
      for (int64_t c = 0; c < width; c += step) {
        int64_t count = std::min(step, width - c);
        V value = (V::loadu(row + c, count) - V(m)) - log_s;
        value.store(lp + c, count);
        dot = dot + V::set(V(scalar_t(0)), value * q.at(c, count), count);
      }
      return -at::vec::vec_reduce_all<scalar_t>([](V a, V b) { return a + b; }, dot);
    });
  });
  return {rows_reduced(total, reduction, rows, loss), log_p};
}

// dL/dx of CrossEntropyProbsFunction with no gradient reaching log p, one row at a time:
// G = −g_i q_i (Python's order: −(g_i w) t'), dL/dx = G − e^{log p} Σ_c G_c; g = dL/dℓ (per
// sample for 'none', else one value, the 'mean' divided by N).
Tensor cross_entropy_probability_grad_rows(const Tensor& log_p, const Tensor& target,
                                           const Tensor& weight, const Tensor& grad_loss,
                                           double smoothing) {
  int64_t rows = log_p.size(0), width = log_p.size(1);
  Tensor grad_input = at::empty_like(log_p);
  Tensor per_sample = grad_loss.contiguous();
  bool one = per_sample.numel() == 1;
  AT_DISPATCH_FLOATING_TYPES(log_p.scalar_type(), "manualgrad_cross_entropy_probs_grad", [&] {
    using V = Vec<scalar_t>;
    constexpr int64_t step = V::size();
    const scalar_t* lp = log_p.const_data_ptr<scalar_t>();
    const scalar_t* t = target.const_data_ptr<scalar_t>();
    const scalar_t* w = weight.defined() ? weight.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gs = per_sample.const_data_ptr<scalar_t>();
    scalar_t* out = grad_input.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain(width), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        // G_c = −(g_i w_c) t'_c, in the Python Function's order
        V g(one ? gs[0] : gs[i]);
        RowTargets<scalar_t> q{t + i * width, nullptr, smoothing, width};
        auto term = [&](int64_t c, int64_t count) {
          V gw = w ? g * V::loadu(w + c, count) : g;
          return gw.neg() * q.at(c, count);
        };
        V sum(scalar_t(0));
        for (int64_t c = 0; c < width; c += step) {
          int64_t count = std::min(step, width - c);
          sum = sum + V::set(V(scalar_t(0)), term(c, count), count);
        }
        V total(at::vec::vec_reduce_all<scalar_t>([](V a, V b) { return a + b; }, sum));
        const scalar_t* row = lp + i * width;
        for (int64_t c = 0; c < width; c += step) {
          int64_t count = std::min(step, width - c);
          V grad = term(c, count) - V::loadu(row + c, count).exp() * total;
          grad.store(out + i * width + c, count);
        }
      }
    });
  });
  return grad_input;
}

}  // namespace

// Python: manualgrad.functional.losses.CrossEntropyProbsFunction. Outputs (L, log p), log p
// hidden; saves log p, t (only if x needs a gradient) and the weight. On a contiguous (N, C)
// input the forward and a first-order dL/dx (t needing none) are row kernels
// (cross_entropy_probability_rows / _grad_rows); else the Python Function's ops.
struct CrossEntropyProbsTwin : public TwinFunction<CrossEntropyProbsTwin> {
  static variable_list forward(TwinContext* ctx, const Tensor& input, const Tensor& target,
                               const std::optional<Tensor>& weight_arg, std::string reduction,
                               double smoothing) {
    Tensor weight = weight_arg.value_or(Tensor());
    ctx->set_materialize_grads(false);
    ctx->saved_data["reduction"] = reduction;
    ctx->saved_data["smoothing"] = smoothing;
    Tensor loss, log_p;
    if (probability_rows(input, target, weight)) {
      std::tie(loss, log_p) =
          cross_entropy_probability_rows(input, target, weight, reduction, smoothing);
    } else {
      int64_t dim = class_dim(input);
      log_p = log_softmax_values(input, dim);
      Tensor q = smoothed(target, smoothing, log_p.size(dim));
      if (weight.defined()) {
        q = q * along_classes(weight, log_p, dim);
      }
      loss = reduce(-(log_p * q).sum(dim), reduction);
    }
    ctx->save_for_backward({log_p, input.requires_grad() ? target : Tensor(), weight});
    return {loss, log_p};
  }

  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor& log_p = saved[0];
    const Tensor& target = saved[1];
    const Tensor& weight = saved[2];
    const Tensor& grad_loss = grads[0];
    bool needs_input = ctx->needs_input_grad(0);
    bool needs_target = ctx->needs_input_grad(1);
    int64_t dim = class_dim(log_p);
    double smoothing = ctx->saved_data["smoothing"].toDouble();
    const std::string& reduction = ctx->saved_data["reduction"].toStringRef();
    variable_list none(5);
    Tensor grad = grads[1];
    if (grad_loss.defined()) {
      int64_t count = log_p.numel() ? log_p.numel() / log_p.size(dim) : 0;
      Tensor g = unreduce(grad_loss, reduction, count);
      if (needs_input && !needs_target && !grad.defined() && !at::GradMode::is_enabled() &&
          plain(g) && g.scalar_type() == log_p.scalar_type() &&
          probability_rows(log_p, target, weight)) {
        none[0] = cross_entropy_probability_grad_rows(log_p, target, weight, g, smoothing);
        return none;
      }
      if (reduction == "none") {
        g = g.unsqueeze(dim);
      }
      if (weight.defined()) {
        g = g * along_classes(weight, log_p, dim);
      }
      if (needs_input) {
        Tensor term = -g * smoothed(target, smoothing, log_p.size(dim));
        grad = grad.defined() ? grad + term : term;
      }
      if (needs_target) {
        none[1] = (-(1 - smoothing)) * g * log_p;
      }
    }
    if (needs_input && grad.defined()) {
      none[0] = grad - log_p.exp() * grad.sum(dim, true);
    }
    return none;
  }
};

namespace {

// ---- multi-class margin loss ---------------------------------------------------------------

// Rows x (N, C), target column y (N, 1), z_ij = m − x_{i,y_i} + x_ij and the active mask
// a_ij = 1[z_ij > 0, j ≠ y_i], as losses._margin_terms.
struct MarginTerms {
  Tensor rows, column, z, active;
};
MarginTerms margin_terms(const Tensor& input, const Tensor& target, double margin) {
  int64_t classes = input.dim() ? input.size(-1) : 1;
  Tensor rows = input.reshape({-1, classes});
  Tensor column = target.reshape({-1, 1});
  Tensor z = at::rsub(rows.gather(1, column), margin) + rows;
  return {rows, column, z, (z > 0).scatter(1, column, false)};
}

// Whether multi_margin_grad_rows may run: first order, the saved mask or x a contiguous (N, C)
// plain tensor (x of g's dtype), g plain float/double, int64 targets, a contiguous class weight
// of g's dtype if any.
bool margin_grad_rows(const Tensor& saved, const Tensor& target, const Tensor& weight,
                      const Tensor& g, int64_t p) {
  return !at::GradMode::is_enabled() && fusable(g) && saved.dim() == 2 && saved.numel() > 0 &&
         saved.is_contiguous() && plain(saved) &&
         (p == 1 || saved.scalar_type() == g.scalar_type()) &&
         target.scalar_type() == at::kLong && plain(target) &&
         (!weight.defined() || (weight.scalar_type() == g.scalar_type() &&
                                weight.is_contiguous() && plain(weight)));
}

// MultiMarginLossFunction's forward, one loop per row: z_j = (m − x_y) + x_j,
// a_j = 1[z_j > 0, j ≠ y] written, ℓ_i = Σ_j (a_j z_j)^p / C · w_y written ('none') or summed
// in double ('mean' over the N ≥ 1 rows).
std::tuple<Tensor, Tensor> multi_margin_rows(const Tensor& input, const Tensor& target,
                                             int64_t p, double margin, const Tensor& weight,
                                             const std::string& reduction) {
  int64_t rows = input.size(0), width = input.size(1);
  bool none = reduction == "none";
  Tensor active = at::empty({rows, width}, input.options().dtype(at::kBool));
  Tensor loss = at::empty({none ? rows : 0}, input.options());
  Tensor targets = target.contiguous();
  double total = 0;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_multi_margin", [&] {
    const scalar_t* x = input.const_data_ptr<scalar_t>();
    const scalar_t* w = weight.defined() ? weight.const_data_ptr<scalar_t>() : nullptr;
    const int64_t* t = targets.const_data_ptr<int64_t>();
    bool* a = active.mutable_data_ptr<bool>();
    total = row_losses<scalar_t>(rows, width, loss, [&](int64_t i) {
      const scalar_t* row = x + i * width;
      scalar_t base = static_cast<scalar_t>(margin) - row[t[i]];
      scalar_t row_sum = 0;
      for (int64_t j = 0; j < width; ++j) {
        scalar_t z = base + row[j];
        bool on = z > 0 && j != t[i];
        a[i * width + j] = on;
        scalar_t hinge = on ? z : scalar_t(0);
        row_sum += p == 1 ? hinge : hinge * hinge;
      }
      scalar_t value = row_sum / static_cast<scalar_t>(width);
      return w ? value * w[t[i]] : value;
    });
  });
  return {rows_reduced(total, reduction, rows, loss), active};
}

// MultiMarginLossFunction's dL/dx, one loop per row: s_i = g_i / C · w_y, h_j = a_j (p = 1,
// from the saved mask) or 2 a_j z_j (p = 2, z from the saved x); dL/dx_j = s_i h_j, and
// −s_i Σ_j h_j added at y; g = dL/dℓ (per sample for 'none', else one value).
Tensor multi_margin_grad_rows(const Tensor& saved, const Tensor& target, const Tensor& weight,
                              const Tensor& g, int64_t p, double margin) {
  int64_t rows = saved.size(0), width = saved.size(1);
  Tensor grad_input = at::empty({rows, width}, g.options());
  Tensor targets = target.contiguous();
  Tensor per_sample = g.contiguous();
  bool one = per_sample.numel() == 1;
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "manualgrad_multi_margin_grad", [&] {
    const scalar_t* x = p == 2 ? saved.const_data_ptr<scalar_t>() : nullptr;
    const bool* a = p == 1 ? saved.const_data_ptr<bool>() : nullptr;
    const scalar_t* w = weight.defined() ? weight.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gs = per_sample.const_data_ptr<scalar_t>();
    const int64_t* t = targets.const_data_ptr<int64_t>();
    scalar_t* out = grad_input.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, grain(width), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        scalar_t scale = (one ? gs[0] : gs[i]) / static_cast<scalar_t>(width);
        if (w) {
          scale = scale * w[t[i]];
        }
        scalar_t* grad = out + i * width;
        scalar_t sum = 0;
        for (int64_t j = 0; j < width; ++j) {
          scalar_t slope;
          if (p == 1) {
            slope = a[i * width + j] ? scalar_t(1) : scalar_t(0);
          } else {
            scalar_t z = (static_cast<scalar_t>(margin) - x[i * width + t[i]]) + x[i * width + j];
            slope = 2 * (z > 0 && j != t[i] ? z : scalar_t(0));
          }
          grad[j] = scale * slope;
          sum += grad[j];
        }
        grad[t[i]] += -sum;
      }
    });
  });
  return grad_input;
}

}  // namespace

// Python: manualgrad.functional.losses.MultiMarginLossFunction. Outputs (L, a), a hidden and
// non-differentiable; saves a (p = 1) or x (p = 2), the target and the weight. On a contiguous
// (N, C) input the forward and a first-order dL/dx are one loop per row (multi_margin_rows /
// _grad_rows); else the Python Function's ops.
struct MultiMarginLossTwin : public TwinFunction<MultiMarginLossTwin> {
  static variable_list forward(TwinContext* ctx, const Tensor& input, const Tensor& target,
                               int64_t p, double margin, const std::optional<Tensor>& weight_arg,
                               std::string reduction) {
    Tensor weight = weight_arg.value_or(Tensor());
    Tensor loss, active;
    if (row_kernel(input, target, weight)) {
      std::tie(loss, active) = multi_margin_rows(input, target, p, margin, weight, reduction);
    } else {
      auto terms = margin_terms(input, target, margin);
      Tensor hinge = at::where(terms.active, terms.z, 0);
      loss = (p == 1 ? hinge : hinge.square()).sum(1) / terms.rows.size(1);
      if (weight.defined()) {
        loss = loss * weight.index_select(0, terms.column.squeeze(1));
      }
      loss = loss.reshape(target.sizes());
      int64_t count = std::max<int64_t>(terms.rows.size(0), 1);
      loss = reduction == "mean" ? loss.sum() / count : reduce(loss, reduction);
      active = terms.active;
    }
    ctx->mark_non_differentiable({active});
    ctx->saved_data["p"] = p;
    ctx->saved_data["margin"] = margin;
    ctx->saved_data["reduction"] = reduction;
    ctx->saved_data["input_shape"] = input.sizes().vec();
    ctx->save_for_backward({p == 1 ? active : input, target, weight});
    return {loss, active};
  }

  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved_tensors = ctx->get_saved_variables();
    const Tensor& saved = saved_tensors[0];
    const Tensor& target = saved_tensors[1];
    const Tensor& weight = saved_tensors[2];
    int64_t p = ctx->saved_data["p"].toInt();
    double margin = ctx->saved_data["margin"].toDouble();
    auto input_shape = ctx->saved_data["input_shape"].toIntVector();
    variable_list none(6);
    int64_t samples = saved.dim() == 2 ? saved.size(0) : 1;
    Tensor g = unreduce(grads[0], ctx->saved_data["reduction"].toStringRef(),
                        std::max<int64_t>(samples, 1));
    if (margin_grad_rows(saved, target, weight, g, p)) {
      none[0] = multi_margin_grad_rows(saved, target, weight, g, p, margin);
      return none;
    }
    Tensor column = target.reshape({-1, 1});
    Tensor slope;
    if (p == 1) {
      slope = saved.to(g.scalar_type());
    } else {
      auto terms = margin_terms(saved, target, margin);
      slope = 2 * at::where(terms.active, terms.z, 0);
    }
    Tensor scale = g.reshape({-1, 1}) / slope.size(1);
    if (weight.defined()) {
      scale = scale * weight.index_select(0, column.reshape(-1)).view({-1, 1});
    }
    Tensor grad = scale * slope;
    none[0] = grad.scatter_add(1, column, -grad.sum(1, true)).reshape(input_shape);
    return none;
  }
};

// Python: manualgrad.functional.losses.NLLLossFunction. dL/dx = scatter of −g w_t at the
// targets; saves the target and the weight only. The forward checks the targets' range
// (class_rows, or check_class_range on the composite path).
struct NLLLossTwin : public TwinFunction<NLLLossTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& target,
                        const std::optional<Tensor>& weight_arg, std::string reduction,
                        int64_t ignore_index) {
    Tensor weight = weight_arg.value_or(Tensor());
    ctx->saved_data["reduction"] = reduction;
    ctx->saved_data["ignore_index"] = ignore_index;
    ctx->saved_data["input_shape"] = input.sizes().vec();
    ctx->save_for_backward({target, weight});
    if (row_kernel(input, target, weight)) {
      return nll_rows(input, target, weight, reduction, ignore_index);
    }
    check_class_range(target, input.size(class_dim(input)), ignore_index);
    Picked p = picked(target, weight, ignore_index, input.scalar_type());
    Tensor loss = -pick(input, p, class_dim(input)) * p.weight;
    return reduce(loss, reduction, p.weight.sum());
  }

  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor& grad_loss = grads[0];
    int64_t ignore_index = ctx->saved_data["ignore_index"].toInt();
    const std::string& reduction = ctx->saved_data["reduction"].toStringRef();
    auto shape = ctx->saved_data["input_shape"].toIntVector();
    if (shape.size() == 2 && shape[0] * shape[1] > 0 && !at::GradMode::is_enabled() &&
        fusable(grad_loss) && saved[0].scalar_type() == at::kLong &&
        (!saved[1].defined() ||
         (saved[1].is_contiguous() && saved[1].scalar_type() == grad_loss.scalar_type()))) {
      Tensor grad_input =
          nll_grad_rows(shape, saved[0], saved[1], grad_loss, reduction, ignore_index);
      return {grad_input, Tensor(), Tensor(), Tensor(), Tensor()};
    }
    Picked p = picked(saved[0], saved[1], ignore_index, grad_loss.scalar_type());
    Tensor g = per_sample_grad(grad_loss, reduction, p);
    int64_t dim = shape.size() == 1 ? 0 : 1;
    Tensor grad_input =
        scattered(grad_loss.new_zeros(shape), dim, p.index, (-g * p.weight).unsqueeze(dim));
    return {grad_input, Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

namespace {

// ---- binary cross-entropy on logits --------------------------------------------------------

// log σ(x) = min(x, 0) − log(1 + e^{−|x|}), as losses._log_sigmoid.
Tensor stable_log_sigmoid(const Tensor& input) {
  Tensor lower = input.clamp_max(0);  // first, as in Python: the double backward's node order
  return lower - at::log1p(at::exp(-input.abs()));
}
template <typename T>
Vec<T> stable_log_sigmoid(const Vec<T>& input) {
  return at::vec::clamp_max(input, Vec<T>(T(0))) - input.abs().neg().exp().log1p();
}

// Where x, t, w and P sit among a BCE pass's operands: x at `first`, then t, then w and P
// when given (−1 when not).
struct BCEOperands {
  int x, t, w, p;
  BCEOperands(int first, const Tensor& weight, const Tensor& pos_weight)
      : x(first), t(first + 1), w(weight.defined() ? first + 2 : -1),
        p(pos_weight.defined() ? first + 2 + weight.defined() : -1) {}
};

// BCEWithLogitsFunction's ℓ in one pass over x, t, w, P: written ('none') or summed in double
// ('sum', 'mean' = Σ ℓ / n).
Tensor bce_fused(const Tensor& input, const Tensor& target, const Tensor& weight,
                 const Tensor& pos_weight, const std::string& reduction) {
  bool none = reduction == "none";
  Tensor loss = none ? at::empty(input.sizes(), input.options()) : Tensor();
  auto iter = mixed_iterator({&loss}, {&input, &target, &weight, &pos_weight});
  BCEOperands k(none ? 1 : 0, weight, pos_weight);
  double total = 0;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_bce", [&] {
    using V = Vec<scalar_t>;
    total = fused_pass<scalar_t>(iter, [&](const auto& o, int64_t i, int64_t count) {
      V x = o[k.x].load(i, count);
      V t = o[k.t].load(i, count);
      V log_sig = stable_log_sigmoid(x);
      V one(scalar_t(1));
      V loss = k.p < 0 ? (one - t) * x - log_sig
                       : (one - t) * x - ((o[k.p].load(i, count) - one) * t + one) * log_sig;
      if (k.w >= 0) {
        loss = loss * o[k.w].load(i, count);
      }
      if (none) {
        o[0].store(i, loss, count);
        return V(scalar_t(0));
      }
      return loss;
    });
  });
  if (none) {
    return loss;
  }
  if (reduction == "sum") {
    return scalar_of(total, input);
  }
  return scalar_of(total / static_cast<double>(input.numel()), input);
}

// BCEWithLogitsFunction's dL/dx = g w [(1 + (P − 1) t) σ(x) − P t] in one pass (g 0-d or
// x-shaped).
Tensor bce_grad_fused(const Tensor& g, const Tensor& input, const Tensor& target,
                      const Tensor& weight, const Tensor& pos_weight) {
  Tensor grad = at::empty(input.sizes(), input.options());
  auto iter = mixed_iterator({&grad}, {&g, &input, &target, &weight, &pos_weight});
  BCEOperands k(2, weight, pos_weight);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_bce_grad", [&] {
    using V = Vec<scalar_t>;
    fused_pass<scalar_t>(iter, [&](const auto& o, int64_t i, int64_t count) {
      V gw = o[1].load(i, count);
      if (k.w >= 0) {
        gw = gw * o[k.w].load(i, count);
      }
      V t = o[k.t].load(i, count);
      V probability = sigmoid_value(o[k.x].load(i, count));
      if (k.p < 0) {
        o[0].store(i, gw * (probability - t), count);
      } else {
        V p = o[k.p].load(i, count);
        V one(scalar_t(1));
        o[0].store(i, gw * (((p - one) * t + one) * probability - p * t), count);
      }
      return V(scalar_t(0));
    });
  });
  return grad;
}

}  // namespace

// Python: manualgrad.functional.losses.BCEWithLogitsFunction. Saves x, t (only if x needs a
// gradient), w and P. The forward and a first-order dL/dx (t needing none) are one pass each
// (bce_fused, bce_grad_fused) on plain float/double tensors of one dtype.
struct BCEWithLogitsTwin : public TwinFunction<BCEWithLogitsTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& target,
                        const std::optional<Tensor>& weight_arg,
                        const std::optional<Tensor>& pos_weight_arg, std::string reduction) {
    Tensor weight = weight_arg.value_or(Tensor());
    Tensor pos_weight = pos_weight_arg.value_or(Tensor());
    ctx->saved_data["reduction"] = reduction;
    ctx->save_for_backward({input, input.requires_grad() ? target : Tensor(), weight, pos_weight});
    if (fusable_all({&input, &target, &weight, &pos_weight})) {
      return bce_fused(input, target, weight, pos_weight, reduction);
    }
    Tensor log_sig = stable_log_sigmoid(input);
    Tensor loss = pos_weight.defined()
                      ? at::rsub(target, 1) * input - ((pos_weight - 1) * target + 1) * log_sig
                      : at::rsub(target, 1) * input - log_sig;
    if (weight.defined()) {
      loss = loss * weight;
    }
    return reduce(loss, reduction);
  }

  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor& input = saved[0];
    const Tensor& target = saved[1];
    const Tensor& weight = saved[2];
    const Tensor& pos_weight = saved[3];
    Tensor g = unreduce(grads[0], ctx->saved_data["reduction"].toStringRef(), input.numel());
    if (ctx->needs_input_grad(0) && !ctx->needs_input_grad(1) && !at::GradMode::is_enabled() &&
        fusable_all({&g, &input, &target, &weight, &pos_weight})) {
      return {bce_grad_fused(g, input, target, weight, pos_weight), Tensor(), Tensor(), Tensor(),
              Tensor()};
    }
    if (weight.defined()) {
      g = g * weight;
    }
    Tensor grad_input, grad_target;
    // Each operand built before the next, in the Python Function's order (it fixes the order
    // in which double backward accumulates the terms).
    if (ctx->needs_input_grad(0)) {  // g w [(1 + (P − 1) t) σ(x) − P t]
      Tensor probability = at::sigmoid(input);
      if (pos_weight.defined()) {
        Tensor positive = ((pos_weight - 1) * target + 1) * probability;
        grad_input = g * (positive - pos_weight * target);
      } else {
        grad_input = g * (probability - target);
      }
    }
    if (ctx->needs_input_grad(1)) {  // −g w [P log σ(x) − log σ(−x)]
      if (pos_weight.defined()) {
        Tensor scale = -g;
        Tensor positive = pos_weight * stable_log_sigmoid(input);
        grad_target = scale * (positive - stable_log_sigmoid(-input));
      } else {
        grad_target = -g * input;
      }
    }
    return {grad_input, grad_target, Tensor(), Tensor(), Tensor()};
  }
};

namespace {

// ---- binary hinge loss ---------------------------------------------------------------------

// HingeLossFunction's forward in one pass over x and t: z = m − t x, ℓ = max(z, 0) written
// ('none') or summed in double, a = 1[z ≥ 0] written (bool) and, when `slope`, −t·a (int8).
struct HingeForward {
  Tensor loss, active, slope;
};
HingeForward hinge_fused(const Tensor& input, const Tensor& target, double margin,
                         const std::string& reduction, bool slope) {
  auto shape = at::infer_size(input.sizes(), target.sizes());
  bool none = reduction == "none";
  HingeForward out{none ? at::empty(shape, input.options()) : Tensor(),
                   at::empty(shape, input.options().dtype(at::kBool)),
                   slope ? at::empty(shape, input.options().dtype(at::kChar)) : Tensor()};
  auto iter = mixed_iterator({&out.loss, &out.active, &out.slope}, {&input, &target});
  const int a = none ? 1 : 0, x = a + 1 + slope;
  double total = 0;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_hinge", [&] {
    using V = Vec<scalar_t>;
    total = fused_pass<scalar_t>(iter, [&](const auto& o, int64_t i, int64_t count) {
      V t = o[x + 1].load(i, count);
      V z = V(static_cast<scalar_t>(margin)) - t * o[x].load(i, count);
      V loss = at::vec::clamp_min(z, V(scalar_t(0)));
      V active = z.ge(V(scalar_t(0)));
      o[a].store_bytes(i, active, count);
      if (slope) {
        o[a + 1].store_bytes(i, active * t.neg(), count);
      }
      if (none) {
        o[0].store(i, loss, count);
        return V(scalar_t(0));
      }
      return loss;
    });
  });
  if (!none) {
    double mean = total / static_cast<double>(out.active.numel());
    out.loss = scalar_of(reduction == "sum" ? total : mean, input);
  }
  return out;
}

// HingeLossFunction's dL/dy = g · (−t a) in one pass from the int8 slope (g 0-d or
// slope-shaped).
Tensor hinge_grad_fused(const Tensor& g, const Tensor& slope) {
  Tensor grad = at::empty(slope.sizes(), g.options());
  auto iter = mixed_iterator({&grad}, {&g, &slope});
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "manualgrad_hinge_grad", [&] {
    using V = Vec<scalar_t>;
    fused_pass<scalar_t>(iter, [&](const auto& o, int64_t i, int64_t count) {
      o[0].store(i, o[1].load(i, count) * o[2].load_bytes(i, count), count);
      return V(scalar_t(0));
    });
  });
  return grad;
}

}  // namespace

// Python: manualgrad.functional.losses.HingeLossFunction. Outputs (L, a = 1[z ≥ 0]), a hidden
// and non-differentiable; saves the int8 slope −t·a, or x, t and a when t needs a gradient.
// The forward and the first-order dL/dy from the slope are one pass each (hinge_fused,
// hinge_grad_fused) on plain float/double tensors of one dtype.
struct HingeLossTwin : public TwinFunction<HingeLossTwin> {
  static variable_list forward(TwinContext* ctx, const Tensor& input, const Tensor& target,
                               double margin, std::string reduction) {
    bool target_grad = target.requires_grad();
    HingeForward out;
    if (fusable_all({&input, &target})) {
      out = hinge_fused(input, target, margin, reduction, !target_grad);
    } else {
      Tensor z = at::rsub(target * input, margin);
      out.loss = reduce(z.clamp_min(0), reduction);
      out.active = z >= 0;
      out.slope = target_grad ? Tensor() : (out.active * -target).to(at::kChar);
    }
    ctx->mark_non_differentiable({out.active});
    ctx->saved_data["reduction"] = reduction;
    ctx->saved_data["input_shape"] = input.sizes().vec();
    ctx->saved_data["target_shape"] = target.sizes().vec();
    if (target_grad) {
      ctx->save_for_backward({input, target, out.active});
    } else {
      ctx->save_for_backward({Tensor(), Tensor(), out.slope});
    }
    return {out.loss, out.active};
  }

  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor& input = saved[0];
    const Tensor& target = saved[1];
    const Tensor& mask = saved[2];
    auto input_shape = ctx->saved_data["input_shape"].toIntVector();
    Tensor g = unreduce(grads[0], ctx->saved_data["reduction"].toStringRef(), mask.numel());
    if (!input.defined()) {
      bool fuse = !at::GradMode::is_enabled() && fusable(g) && plain(mask);
      Tensor grad = fuse ? hinge_grad_fused(g, mask) : g * mask;
      return {grad.sum_to_size(input_shape), Tensor(), Tensor(), Tensor()};
    }
    g = g * mask;
    Tensor grad_input, grad_target;
    if (ctx->needs_input_grad(0)) {
      grad_input = (-g * target).sum_to_size(input_shape);
    }
    if (ctx->needs_input_grad(1)) {
      grad_target = (-g * input).sum_to_size(ctx->saved_data["target_shape"].toIntVector());
    }
    return {grad_input, grad_target, Tensor(), Tensor()};
  }
};

namespace {

std::tuple<Tensor, Tensor> pair(variable_list outputs) {
  return {outputs[0], outputs[1]};
}

}  // namespace

std::tuple<Tensor, Tensor> mse_loss(const Tensor& input, const Tensor& target,
                                    const std::optional<Tensor>& weight, std::string reduction) {
  return pair(MSELossTwin::apply(input, target, weight, reduction, 0.0));
}
std::tuple<Tensor, Tensor> l1_loss(const Tensor& input, const Tensor& target,
                                   const std::optional<Tensor>& weight, std::string reduction) {
  return pair(L1LossTwin::apply(input, target, weight, reduction, 0.0));
}
std::tuple<Tensor, Tensor> huber_loss(const Tensor& input, const Tensor& target,
                                      const std::optional<Tensor>& weight, std::string reduction,
                                      double delta) {
  return pair(HuberLossTwin::apply(input, target, weight, reduction, delta));
}
std::tuple<Tensor, Tensor> cross_entropy(const Tensor& input, const Tensor& target,
                                         const std::optional<Tensor>& weight,
                                         std::string reduction, int64_t ignore_index,
                                         double label_smoothing) {
  return pair(
      CrossEntropyTwin::apply(input, target, weight, reduction, ignore_index, label_smoothing));
}
std::tuple<Tensor, Tensor> cross_entropy_probabilities(const Tensor& input, const Tensor& target,
                                                       const std::optional<Tensor>& weight,
                                                       std::string reduction,
                                                       double label_smoothing) {
  return pair(CrossEntropyProbsTwin::apply(input, target, weight, reduction, label_smoothing));
}
std::tuple<Tensor, Tensor> hinge_loss(const Tensor& input, const Tensor& target, double margin,
                                      std::string reduction) {
  return pair(HingeLossTwin::apply(input, target, margin, reduction));
}
std::tuple<Tensor, Tensor> multi_margin_loss(const Tensor& input, const Tensor& target, int64_t p,
                                             double margin, const std::optional<Tensor>& weight,
                                             std::string reduction) {
  return pair(MultiMarginLossTwin::apply(input, target, p, margin, weight, reduction));
}
Tensor nll_loss(const Tensor& input, const Tensor& target, const std::optional<Tensor>& weight,
                std::string reduction, int64_t ignore_index) {
  return NLLLossTwin::apply(input, target, weight, reduction, ignore_index);
}
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const std::optional<Tensor>& weight,
                                        const std::optional<Tensor>& pos_weight,
                                        std::string reduction) {
  return BCEWithLogitsTwin::apply(input, target, weight, pos_weight, reduction);
}

}  // namespace manualgrad
