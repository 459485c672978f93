// C++ twins of manualgrad.functional.normalization (see twins.h): layer, RMS, group and batch
// norm, and the residual add + norm of manualgrad.functional.transformer.AddNormFunction; the
// derivation of the normalization module's docstring (and of each Function's docstring).
//
// The forward and a first-order backward (grad mode off, plain float32/float64 tensors) are
// vectorised row kernels: per row (a layer norm's row, a group of a sample; batch norm sums the
// columns of its (N, C·L) matrix) the statistics once — μ, then v = (1/M) Σ (x − μ)² or the mean
// square, r = (v + ε)^(−1/2) — and the normalisation in the same visit, the row still in cache;
// backward the sums Σ ĝ, Σ ĝ (x − μ) once, then dL/dx = r ĝ + B x + C in one pass. Rows run in
// parallel (at::parallel_for) in chunks fixed by the shape, each chunk summing the column sums
// (dL/dw, dL/db of layer norm, batch norm's statistics) into its own buffer, the buffers added in
// chunk order: the same result at any thread count. Sums accumulate in the data's type (float32
// lanes for float32, as torch's reductions), so results equal the Python path's within float32
// rounding — not bit for bit: the summation order differs, and Σ ĝ (x − μ) is summed as such
// (the Python Function forms Σ ĝ x − μ Σ ĝ). Element-wise the operations run in the Python
// Function's order (e.g. ((x − μ)·r)·w + b).
//
// With grad mode on inside backward (double backward), or batched gradients, the backward is
// the Python Function's, written with composite differentiable ATen ops; μ and r are outputs,
// saved as such, so that backward stays connected to x.

#include <ATen/Parallel.h>

#include <algorithm>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common.h"
#include "twins.h"

namespace manualgrad {

namespace {

// ---- row kernels: a body run on vectors, then on the scalar tail ---------------------------

template <typename T>
Vec<T> load(const T* data, const Vec<T>&) {
  return Vec<T>::loadu(data);
}
template <typename T>
T load(const T* data, const T&) {
  return *data;
}
template <typename T>
void store(T* data, const Vec<T>& value) {
  value.store(data);
}
template <typename T>
void store(T* data, T value) {
  *data = value;
}

// body(i, V()) for i = 0, step, 2·step, ... (V = Vec<T>, step its width), then body(i, T())
// for the tail.
template <typename T, typename Body>
void strip(int64_t n, const Body& body) {
  constexpr int64_t step = Vec<T>::size();
  int64_t i = 0;
  for (; i + step <= n; i += step) {
    body(i, Vec<T>());
  }
  for (; i < n; ++i) {
    body(i, T());
  }
}

// A factor of a row formula, its kind fixed at compile time: one value per element (Each) or one
// for all (All), so a kernel is compiled once per combination and its loops carry no branch.
template <typename T>
struct Each {
  const T* data;
  template <typename V>
  V at(int64_t i, const V& tag) const {
    return load(data + i, tag);
  }
  Each shifted(int64_t offset) const {  // the factor from element `offset` on
    return {data + offset};
  }
};
template <typename T>
struct All {
  T value;
  template <typename V>
  V at(int64_t, const V&) const {
    return V(value);
  }
  All shifted(int64_t) const {
    return *this;
  }
};
template <typename T>
Each<T> each(const T* data) {
  return {data};
}
template <typename T>
All<T> all(T value) {
  return {value};
}

// f(each(data)) when data is there, else f(all(otherwise)).
template <typename T, typename F>
void select(const T* data, T otherwise, const F& f) {
  if (data != nullptr) {
    f(each(data));
  } else {
    f(all(otherwise));
  }
}

// f(std::true_type()) or f(std::false_type()): a flag fixed at compile time.
template <typename F>
void flag(bool value, const F& f) {
  if (value) {
    f(std::true_type());
  } else {
    f(std::false_type());
  }
}

// The sum of a vector's lanes.
template <typename T>
T lanes(const Vec<T>& v) {
  T parts[Vec<T>::size()];
  v.store(parts);
  T total(0);
  for (T part : parts) {
    total += part;
  }
  return total;
}

// Σ_{i<n} term(i, V): four vector accumulators (independent chains, so the adds overlap), then
// their lanes and the scalar tail.
template <typename T, typename Term>
T row_sum(int64_t n, const Term& term) {
  constexpr int64_t step = Vec<T>::size();
  Vec<T> sums[4] = {Vec<T>(T(0)), Vec<T>(T(0)), Vec<T>(T(0)), Vec<T>(T(0))};
  int64_t i = 0;
  for (; i + 4 * step <= n; i += 4 * step) {
    for (int64_t k = 0; k < 4; ++k) {
      sums[k] += term(i + k * step, Vec<T>());
    }
  }
  for (; i + step <= n; i += step) {
    sums[0] += term(i, Vec<T>());
  }
  T tail(0);
  for (; i < n; ++i) {
    tail += term(i, T());
  }
  return lanes((sums[0] + sums[1]) + (sums[2] + sums[3])) + tail;
}

// (Σ first, Σ second) of terms(i, V) = (first, second) over i < n in one visit, two vector
// accumulators per sum; terms may also write element i (the accumulation of column sums).
template <typename T, typename Terms>
std::pair<T, T> row_sums(int64_t n, const Terms& terms) {
  constexpr int64_t step = Vec<T>::size();
  Vec<T> firsts[2] = {Vec<T>(T(0)), Vec<T>(T(0))};
  Vec<T> seconds[2] = {Vec<T>(T(0)), Vec<T>(T(0))};
  int64_t i = 0;
  for (; i + 2 * step <= n; i += 2 * step) {
    for (int64_t k = 0; k < 2; ++k) {
      auto [first, second] = terms(i + k * step, Vec<T>());
      firsts[k] += first;
      seconds[k] += second;
    }
  }
  for (; i + step <= n; i += step) {
    auto [first, second] = terms(i, Vec<T>());
    firsts[0] += first;
    seconds[0] += second;
  }
  T first_tail(0);
  T second_tail(0);
  for (; i < n; ++i) {
    auto [first, second] = terms(i, T());
    first_tail += first;
    second_tail += second;
  }
  return {lanes(firsts[0] + firsts[1]) + first_tail, lanes(seconds[0] + seconds[1]) + second_tail};
}

// out[i] = term(i, V) for i < n.
template <typename T, typename Term>
void write(T* out, int64_t n, const Term& term) {
  strip<T>(n, [&](int64_t i, auto tag) { store(out + i, term(i, tag)); });
}

// sums[i] += term(i, V) for i < n.
template <typename T, typename Term>
void add_to(T* sums, int64_t n, const Term& term) {
  strip<T>(n, [&](int64_t i, auto tag) { store(sums + i, load(sums + i, tag) + term(i, tag)); });
}

// μ (0 unless centred: RMS norm) and r = (v + ε)^(−1/2) of n values, v = (1/n) Σ (x − μ)².
template <typename T>
std::pair<T, T> moments(const T* x, int64_t n, bool centred, double eps) {
  T mean(0);
  if (centred) {
    mean = row_sum<T>(n, [&](int64_t i, auto tag) { return load(x + i, tag); }) / T(n);
  }
  T var = row_sum<T>(n,
                     [&](int64_t i, auto tag) {
                       auto c = load(x + i, tag) - decltype(tag)(mean);
                       return c * c;
                     }) /
          T(n);
  return {mean, T(1) / std::sqrt(var + static_cast<T>(eps))};
}

// y = ((x − m)·s)·w + t over n values (the forward's normalisation and affine map); each
// factor an Each or an All.
template <typename T, typename M, typename S, typename W, typename B>
void normalise(T* y, const T* x, int64_t n, const M& m, const S& s, const W& w, const B& t) {
  write<T>(y, n, [&](int64_t i, auto tag) {
    return ((load(x + i, tag) - m.at(i, tag)) * s.at(i, tag)) * w.at(i, tag) + t.at(i, tag);
  });
}

// dL/dx = ((dL/dy·s)·w + x·B) + C over n values (s·w = r ∘ w: the module docstring's r ĝ),
// plus `extra` (AddNorm's dL/dh from its output h) when kExtra; each factor an Each or an All.
template <bool kExtra, typename T, typename X, typename S, typename W, typename B, typename C>
void input_grad_row(T* dx, const T* g, const X& x, int64_t n, const S& s, const W& w, const B& b,
                    const C& c, const T* extra) {
  write<T>(dx, n, [&](int64_t i, auto tag) {
    auto value = ((load(g + i, tag) * s.at(i, tag)) * w.at(i, tag) + x.at(i, tag) * b.at(i, tag)) +
                 c.at(i, tag);
    if constexpr (kExtra) {
      value = value + load(extra + i, tag);
    }
    return value;
  });
}

// B and C of dL/dx = r ĝ + B x + C for one set of M cells (module docstring, as
// normalization._input_grad computes them): B = −r³ (Σ ĝ x − μ Σ ĝ)/M − r³ dL/dr/M,
// C = −r Σ ĝ/M − μ B + dL/dμ/M; not centred (RMS): μ ≡ 0 and C = 0. The row kernels sum
// centred_sum = Σ ĝ (x − μ) (= Σ ĝ x − μ Σ ĝ) directly: no cancellation when |μ| ≫ σ.
template <typename T>
std::pair<T, T> coefficients(T sum_grad, T centred_sum, T mean, T rstd, int64_t count, T grad_mean,
                             T grad_rstd, bool centred) {
  T cubed = (rstd * rstd * rstd) / T(-count);
  T coef_x = centred_sum * cubed + grad_rstd * cubed;
  if (!centred) {
    return {coef_x, T(0)};
  }
  T coef_1 = (rstd * sum_grad) / T(-count) - mean * coef_x + grad_mean * T(1.0 / count);
  return {coef_x, coef_1};
}

constexpr int64_t kGrain = 32768;  // elements per chunk at least (ATen's GRAIN_SIZE)
constexpr int64_t kChunks = 16;    // chunks with column sums at most: their scratch rows

// body(i, own) for each row i < rows of an (rows, width) matrix, the rows cut into chunks of
// kGrain elements at least, run in parallel (at::parallel_for). own[k] (k < outputs.size()) is a
// row of `width` column sums the body adds to: the first chunk's is the zeroed outputs[k]
// itself, each other chunk's a zeroed scratch row, added into outputs[k] in chunk order at the
// end. The chunks depend on the shape alone, not on the thread count (at most kChunks of them
// with column sums), so the sums and their rounding are the same at any number of threads (one
// thread runs the same chunks in turn). Plain buffers: no ATen op per call.
template <typename T, typename Body>
void over_rows(int64_t rows, int64_t width, std::initializer_list<T*> outputs, const Body& body) {
  std::vector<T*> targets(outputs);
  auto count = static_cast<int64_t>(targets.size());
  int64_t most = std::max<int64_t>(1, count == 0 ? rows : std::min(rows, kChunks));
  int64_t chunks = std::clamp<int64_t>(rows * width / kGrain, 1, most);
  for (T* target : targets) {
    std::fill(target, target + width, T(0));
  }
  std::vector<T> scratch((chunks - 1) * count * width, T(0));
  auto own_row = [&](int64_t chunk, int64_t k) {  // chunk ≥ 1
    return scratch.data() + ((chunk - 1) * count + k) * width;
  };
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T*> own(targets);
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      for (int64_t k = 0; k < count && chunk > 0; ++k) {
        own[k] = own_row(chunk, k);
      }
      for (int64_t i = rows * chunk / chunks; i < rows * (chunk + 1) / chunks; ++i) {
        body(i, own.data());
      }
    }
  });
  for (int64_t chunk = 1; chunk < chunks; ++chunk) {
    for (int64_t k = 0; k < count; ++k) {
      const T* part = own_row(chunk, k);
      add_to(targets[k], width, [&](int64_t j, auto tag) { return load(part + j, tag); });
    }
  }
}

template <typename T>
const T* pointer(const Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

template <typename T>
T* pointer_of(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

template <typename T>
T value_at(const T* data, int64_t i) {
  return data != nullptr ? data[i] : T(0);
}

// Whether a backward may take the row kernels: first order, every defined tensor plain and of
// the first's floating dtype (float32/float64).
bool first_order(std::initializer_list<Tensor> tensors) {
  if (at::GradMode::is_enabled()) {
    return false;
  }
  auto dtype = tensors.begin()->scalar_type();
  return std::all_of(tensors.begin(), tensors.end(), [dtype](const Tensor& t) {
    return !t.defined() || (fusable(t) && t.scalar_type() == dtype);
  });
}

// needs_input_grad per tensor argument: an absent optional tensor has no edge
// (custom_function.h), so the edges of the present ones are counted.
std::vector<bool> needs(TwinContext* ctx, std::initializer_list<bool> present) {
  std::vector<bool> result;
  size_t edge = 0;
  for (bool here : present) {
    result.push_back(here && ctx->needs_input_grad(edge));
    edge += here ? 1 : 0;
  }
  return result;
}

Tensor value_or_undefined(const std::optional<Tensor>& t) {
  return t.has_value() ? *t : Tensor();
}

Tensor contiguous(const Tensor& t) {
  return t.defined() ? t.contiguous() : t;
}

// dL/dy, or zeros when only the statistics were reached (their gradients are not materialised).
Tensor grad_or_zeros(const Tensor& grad, const Tensor& like) {
  return grad.defined() ? grad : at::zeros_like(like);
}

// ---- composite backward (grad mode on: differentiable again) -------------------------------

// normalization._input_grad: dL/dx = r ĝ + B x + C from the per-set sums Σ ĝ (undefined for RMS
// norm) and Σ ĝ x, r ĝ = dL/dy ∘ scale (∘ weight when defined).
Tensor composite_input_grad(const Tensor& grad, const Tensor& input, const Tensor& sum_grad,
                            const Tensor& sum_grad_input, const Tensor& mean, const Tensor& rstd,
                            int64_t count, const Tensor& grad_mean, const Tensor& grad_rstd,
                            const Tensor& scale, const Tensor& weight) {
  Tensor centred =
      mean.defined() ? at::addcmul(sum_grad_input, mean, sum_grad, -1) : sum_grad_input;
  Tensor cubed = rstd.pow(3) / static_cast<double>(-count);
  Tensor coef_x = centred * cubed;
  if (grad_rstd.defined()) {  // dr/dx = −r³ (x − μ)/M
    coef_x = at::addcmul(coef_x, grad_rstd, cubed);
  }
  Tensor result = grad * scale;
  if (weight.defined()) {
    result = result * weight;
  }
  result = at::addcmul(result, input, coef_x);
  if (!mean.defined()) {
    return result;
  }
  Tensor coef_1 = at::addcmul(rstd * sum_grad / static_cast<double>(-count), mean, coef_x, -1);
  if (grad_mean.defined()) {  // dμ/dx = 1/M
    coef_1 = coef_1 + grad_mean * (1.0 / static_cast<double>(count));
  }
  return result + coef_1;
}

// ---- layer norm, RMS norm -----------------------------------------------------------------

// The forward of a norm over the last `dims` dims (centred: layer norm; else RMS norm) of
// h = input (+ residual when defined: AddNorm's sum, written in the same visit of each row when
// the shapes agree): (y, μ, r, h) with μ, r of h's leading shape and 1 per normalised dim.
std::vector<Tensor> trailing_forward(const Tensor& input, const Tensor& residual,
                                     const Tensor& weight, const Tensor& bias, int64_t dims,
                                     double eps, bool centred) {
  bool fuse_sum = residual.defined() && residual.sizes() == input.sizes();
  Tensor x = residual.defined() && !fuse_sum ? (input + residual) : input.contiguous();
  Tensor addend = fuse_sum ? residual.contiguous() : Tensor();
  Tensor total = fuse_sum ? at::empty_like(x) : x;
  std::vector<int64_t> stat_shape(x.sizes().begin(), x.sizes().end());
  int64_t width = 1;
  for (int64_t d = x.dim() - dims; d < x.dim(); ++d) {
    width *= stat_shape[d];
    stat_shape[d] = 1;
  }
  int64_t rows = c10::multiply_integers(stat_shape);
  Tensor output = at::empty_like(x);
  Tensor mean = at::empty(stat_shape, x.options());
  Tensor rstd = at::empty(stat_shape, x.options());
  Tensor w = contiguous(weight);
  Tensor b = contiguous(bias);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "manualgrad_norm_forward", [&] {
    const scalar_t* xs = x.const_data_ptr<scalar_t>();
    const scalar_t* addends = pointer<scalar_t>(addend);
    scalar_t* sums = fuse_sum ? total.data_ptr<scalar_t>() : nullptr;
    scalar_t* ys = output.data_ptr<scalar_t>();
    scalar_t* means = mean.data_ptr<scalar_t>();
    scalar_t* rstds = rstd.data_ptr<scalar_t>();
    select(pointer<scalar_t>(w), scalar_t(1), [&](auto scale) {
      select(pointer<scalar_t>(b), scalar_t(0), [&](auto shift) {
        over_rows<scalar_t>(rows, width, {}, [&](int64_t i, scalar_t* const*) {
          const scalar_t* row = xs + i * width;
          if (sums != nullptr) {  // h = x + r, then normalised while in cache
            const scalar_t* other = addends + i * width;
            write<scalar_t>(sums + i * width, width, [&](int64_t j, auto tag) {
              return load(row + j, tag) + load(other + j, tag);
            });
            row = sums + i * width;
          }
          auto [mu, r] = moments(row, width, centred, eps);
          means[i] = mu;
          rstds[i] = r;
          normalise(ys + i * width, row, width, all(mu), all(r), scale, shift);
        });
      });
    });
  });
  return {output, centred ? mean : Tensor(), rstd, total};
}

// The first-order backward of a norm over the last `dims` dims (mean undefined: RMS norm), one
// visit of each row for its sums Σ ĝ, Σ ĝ (x − μ) and the column sums dL/dw = Σ_rows dL/dy ∘ x̂,
// dL/db = Σ_rows dL/dy (per-thread buffers), then dL/dx = r ĝ + B x + C (+ extra: AddNorm's
// dL/dh, of the input's shape) in a second.
std::vector<Tensor> trailing_grads_rows(const Tensor& grad, const Tensor& input,
                                        const Tensor& weight, const Tensor& mean,
                                        const Tensor& rstd, const Tensor& grad_mean,
                                        const Tensor& grad_rstd, const Tensor& extra, int64_t dims,
                                        const std::vector<bool>& need) {
  bool centred = mean.defined();
  at::IntArrayRef shape = input.sizes().slice(input.dim() - dims);
  int64_t width = c10::multiply_integers(shape);
  int64_t rows = rstd.numel();
  Tensor g = grad.contiguous();
  Tensor x = input.contiguous();
  Tensor w = contiguous(weight);
  Tensor mu = contiguous(mean);
  Tensor r = rstd.contiguous();
  Tensor gm = contiguous(grad_mean);
  Tensor gr = contiguous(grad_rstd);
  Tensor e = contiguous(extra);
  Tensor grad_input = need[0] ? at::empty_like(x) : Tensor();
  bool params = need[1] || need[2];  // both column sums, one visit
  Tensor grad_weight = params ? at::empty(shape, x.options()) : Tensor();
  Tensor grad_bias = params ? at::empty(shape, x.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "manualgrad_norm_grads", [&] {
    const scalar_t* gs = g.const_data_ptr<scalar_t>();
    const scalar_t* xs = x.const_data_ptr<scalar_t>();
    const scalar_t* means = pointer<scalar_t>(mu);
    const scalar_t* rstds = r.const_data_ptr<scalar_t>();
    const scalar_t* grad_means = pointer<scalar_t>(gm);
    const scalar_t* grad_rstds = pointer<scalar_t>(gr);
    const scalar_t* extras = pointer<scalar_t>(e);
    scalar_t* dx = need[0] ? grad_input.data_ptr<scalar_t>() : nullptr;
    std::initializer_list<scalar_t*> column_sums = {};
    std::initializer_list<scalar_t*> parameter_sums = {pointer_of<scalar_t>(grad_weight),
                                                       pointer_of<scalar_t>(grad_bias)};
    auto kernel = [&](auto w_op, auto with_params, auto with_extra) {
      auto outputs = decltype(with_params)::value ? parameter_sums : column_sums;
      over_rows<scalar_t>(rows, width, outputs, [&](int64_t i, scalar_t* const* own) {
        const scalar_t* gi = gs + i * width;
        const scalar_t* xi = xs + i * width;
        scalar_t mu = value_at(means, i);
        scalar_t r = rstds[i];
        auto [sum_grad, centred_sum] = row_sums<scalar_t>(width, [&](int64_t j, auto tag) {
          using V = decltype(tag);
          V gj = load(gi + j, tag);
          V c = load(xi + j, tag) - V(mu);
          if constexpr (decltype(with_params)::value) {
            store(own[0] + j, load(own[0] + j, tag) + gj * (c * V(r)));
            store(own[1] + j, load(own[1] + j, tag) + gj);
          }
          return std::pair<V, V>(gj * w_op.at(j, tag), (gj * c) * w_op.at(j, tag));
        });
        if (dx == nullptr) {
          return;
        }
        auto [b, c] = coefficients(centred ? sum_grad : scalar_t(0), centred_sum, mu, r, width,
                                   value_at(grad_means, i), value_at(grad_rstds, i), centred);
        const scalar_t* ei = extras != nullptr ? extras + i * width : nullptr;
        input_grad_row<decltype(with_extra)::value>(dx + i * width, gi, each(xi), width, all(r),
                                                    w_op, all(b), all(c), ei);
      });
    };
    select(pointer<scalar_t>(w), scalar_t(1), [&](auto w_op) {
      flag(params, [&](auto with_params) {
        flag(extras != nullptr, [&](auto with_extra) { kernel(w_op, with_params, with_extra); });
      });
    });
  });
  return {grad_input, need[1] ? grad_weight : Tensor(), need[2] ? grad_bias : Tensor()};
}

// normalization.layer_norm_grads / rms_norm_grads (mean undefined) in composite ops.
std::vector<Tensor> trailing_grads_composite(const Tensor& grad, const Tensor& input,
                                             const Tensor& weight, const Tensor& mean,
                                             const Tensor& rstd, const Tensor& grad_mean,
                                             const Tensor& grad_rstd, int64_t dims,
                                             const std::vector<bool>& need) {
  at::IntArrayRef shape = input.sizes().slice(input.dim() - dims);
  int64_t width = c10::multiply_integers(shape);
  int64_t rows = rstd.numel();
  Tensor g = grad.reshape({rows, width});
  Tensor x = input.reshape({rows, width});
  Tensor w = weight.defined() ? weight.reshape({width}) : weight;
  Tensor mu = mean.defined() ? mean.reshape({-1, 1}) : mean;
  Tensor r = rstd.reshape({-1, 1});
  auto weighted_sum = [&](const Tensor& matrix) {  // Σ_row matrix ∘ w, (R, 1)
    return w.defined() ? matrix.matmul(w).unsqueeze(1) : matrix.sum(1, true);
  };
  Tensor grad_input, grad_weight, grad_bias;
  if (need[0] || need[1]) {
    Tensor grad_times_input = g * x;
    if (need[1]) {
      grad_weight = grad_times_input.t().matmul(r).squeeze(1);
      if (mu.defined()) {
        grad_weight = grad_weight - g.t().matmul(mu * r).squeeze(1);
      }
      grad_weight = grad_weight.view(shape);
    }
    if (need[0]) {
      grad_input = composite_input_grad(
          g, x, mu.defined() ? weighted_sum(g) : Tensor(), weighted_sum(grad_times_input), mu, r,
          width, grad_mean.defined() ? grad_mean.reshape({-1, 1}) : grad_mean,
          grad_rstd.defined() ? grad_rstd.reshape({-1, 1}) : grad_rstd, r, w);
      grad_input = grad_input.view(grad.sizes());
    }
  }
  if (need[2]) {
    grad_bias = g.sum(0).view(shape);
  }
  return {grad_input, grad_weight, grad_bias};
}

// dL/dx (+ extra when defined: AddNorm's dL/dh, of the input's shape), dL/dw, dL/db of a norm
// over the last `dims` dims: the row kernels (extra added in their dL/dx pass) when first
// order, else composite ops.
std::vector<Tensor> trailing_grads(const Tensor& grad, const Tensor& input, const Tensor& weight,
                                   const Tensor& mean, const Tensor& rstd, const Tensor& grad_mean,
                                   const Tensor& grad_rstd, const Tensor& extra, int64_t dims,
                                   const std::vector<bool>& need) {
  Tensor g = grad_or_zeros(grad, input);
  if (first_order({g, input, weight, mean, rstd, grad_mean, grad_rstd, extra})) {
    return trailing_grads_rows(g, input, weight, mean, rstd, grad_mean, grad_rstd, extra, dims,
                               need);
  }
  auto grads =
      trailing_grads_composite(g, input, weight, mean, rstd, grad_mean, grad_rstd, dims, need);
  if (need[0] && extra.defined()) {
    grads[0] = grads[0] + extra;
  }
  return grads;
}

}  // namespace

// A norm with the statistics (μ, r) and an optional affine w, b, of one integer parameter
// (layer norm's dims, group norm's groups): forward Self::outputs (y, μ, r), saving x, w, μ, r;
// backward Self::gradients (dL/dx, dL/dw, dL/db).
template <typename Self>
struct CentredNorm : public TwinFunction<Self> {
  static variable_list forward(TwinContext* ctx, const Tensor& input,
                               const std::optional<Tensor>& weight,
                               const std::optional<Tensor>& bias, int64_t parameter, double eps) {
    ctx->set_materialize_grads(false);
    ctx->saved_data["weight"] = weight.has_value();
    ctx->saved_data["bias"] = bias.has_value();
    ctx->saved_data["parameter"] = parameter;
    Tensor w = value_or_undefined(weight);
    auto outputs = Self::outputs(input, w, value_or_undefined(bias), parameter, eps);
    ctx->save_for_backward({input, w, outputs[1], outputs[2]});
    return outputs;
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto need =
        needs(ctx, {true, ctx->saved_data["weight"].toBool(), ctx->saved_data["bias"].toBool()});
    auto result = Self::gradients(grads[0], saved[0], saved[1], saved[2], saved[3], grads[1],
                                  grads[2], ctx->saved_data["parameter"].toInt(), need);
    return {result[0], result[1], result[2], Tensor(), Tensor()};
  }
};

// Python: manualgrad.functional.normalization.LayerNormFunction.
struct LayerNormTwin : public CentredNorm<LayerNormTwin> {
  static std::vector<Tensor> outputs(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                     int64_t dims, double eps) {
    auto outputs = trailing_forward(input, Tensor(), weight, bias, dims, eps, true);
    outputs.pop_back();  // h = x
    return outputs;
  }
  static std::vector<Tensor> gradients(const Tensor& grad, const Tensor& input,
                                       const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                                       const Tensor& grad_mean, const Tensor& grad_rstd,
                                       int64_t dims, const std::vector<bool>& need) {
    return trailing_grads(grad, input, weight, mean, rstd, grad_mean, grad_rstd, Tensor(), dims,
                          need);
  }
};

// Python: manualgrad.functional.normalization.RMSNormFunction.
struct RMSNormTwin : public TwinFunction<RMSNormTwin> {
  static variable_list forward(TwinContext* ctx, const Tensor& input,
                               const std::optional<Tensor>& weight, int64_t dims, double eps) {
    ctx->set_materialize_grads(false);
    ctx->saved_data["weight"] = weight.has_value();
    ctx->saved_data["dims"] = dims;
    Tensor w = value_or_undefined(weight);
    auto outputs = trailing_forward(input, Tensor(), w, Tensor(), dims, eps, false);
    ctx->save_for_backward({input, w, outputs[2]});
    return {outputs[0], outputs[2]};
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto need = needs(ctx, {true, ctx->saved_data["weight"].toBool(), false});
    auto result = trailing_grads(grads[0], saved[0], saved[1], Tensor(), saved[2], Tensor(),
                                 grads[1], Tensor(), ctx->saved_data["dims"].toInt(), need);
    return {result[0], result[1], Tensor(), Tensor()};
  }
};

// ---- residual add + norm -----------------------------------------------------------------

// Python: manualgrad.functional.transformer.AddNormFunction: h = x + r, y = norm(h) (RMS or
// layer norm, the twins' kernels above on h), outputs (y, h, the norm's statistics);
// dL/dx = dL/dr = dL/dh|_out + normᵀ(dL/dy), reduced to each operand's shape.
struct AddNormTwin : public TwinFunction<AddNormTwin> {
  static variable_list forward(TwinContext* ctx, const Tensor& input, const Tensor& residual,
                               const std::optional<Tensor>& weight,
                               const std::optional<Tensor>& bias, int64_t dims, double eps,
                               std::string kind) {
    ctx->set_materialize_grads(false);
    bool centred = kind != "rms";
    ctx->saved_data["weight"] = weight.has_value();
    ctx->saved_data["bias"] = bias.has_value();
    ctx->saved_data["dims"] = dims;
    ctx->saved_data["centred"] = centred;
    ctx->saved_data["input_sizes"] = input.sizes().vec();
    ctx->saved_data["residual_sizes"] = residual.sizes().vec();
    Tensor w = value_or_undefined(weight);
    Tensor b = centred ? value_or_undefined(bias) : Tensor();
    auto outputs = trailing_forward(input, residual, w, b, dims, eps, centred);
    Tensor total = outputs[3];
    ctx->save_for_backward({total, w, outputs[1], outputs[2]});
    if (centred) {
      return {outputs[0], total, outputs[1], outputs[2]};
    }
    return {outputs[0], total, outputs[2]};
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    bool centred = ctx->saved_data["centred"].toBool();
    auto need = needs(
        ctx, {true, true, ctx->saved_data["weight"].toBool(), ctx->saved_data["bias"].toBool()});
    Tensor grad_mean = centred ? grads[2] : Tensor();
    Tensor grad_rstd = grads[centred ? 3 : 2];
    // dL/dh = normᵀ(dL/dy) + dL/dh|_out, the sum formed in the norm's dL/dx pass
    auto norm = trailing_grads(grads[0], saved[0], saved[1], saved[2], saved[3], grad_mean,
                               grad_rstd, grads[1], ctx->saved_data["dims"].toInt(),
                               {need[0] || need[1], need[2], need[3]});
    Tensor grad_total = norm[0];
    auto reduced = [&](bool wanted, const char* sizes) {
      return wanted && grad_total.defined()
                 ? grad_total.sum_to_size(ctx->saved_data[sizes].toIntVector())
                 : Tensor();
    };
    return {reduced(need[0], "input_sizes"),
            reduced(need[1], "residual_sizes"),
            norm[1],
            norm[2],
            Tensor(),
            Tensor(),
            Tensor()};
  }
};

namespace {

// ---- group norm --------------------------------------------------------------------------

// A group norm's input as (N, C, L), its G groups of `size` = C/G channels.
struct Groups {
  int64_t batch, channels, length, groups, size;
  Groups(const Tensor& input, int64_t groups)
      : batch(input.size(0)),
        channels(input.size(1)),
        length(c10::multiply_integers(input.sizes().slice(2))),
        groups(groups),
        size(input.size(1) / groups) {
  }
  int64_t width() const {  // the cells of one group of one sample
    return size * length;
  }
  Tensor per_channel(const Tensor& per_group) const {  // (N, G) → (N, C)
    return per_group.repeat_interleave(size, 1);
  }
};

// Group norm's forward: per (sample, group) row μ, r, then y = (x − μ)·(r w_c) + b_c.
std::vector<Tensor> group_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                  const Groups& shape, double eps) {
  Tensor x = input.contiguous();
  Tensor w = contiguous(weight);
  Tensor b = contiguous(bias);
  Tensor output = at::empty_like(x);
  Tensor mean = at::empty({shape.batch, shape.groups}, x.options());
  Tensor rstd = at::empty({shape.batch, shape.groups}, x.options());
  int64_t width = shape.width();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "manualgrad_group_norm_forward", [&] {
    const scalar_t* xs = x.const_data_ptr<scalar_t>();
    scalar_t* ys = output.data_ptr<scalar_t>();
    scalar_t* means = mean.data_ptr<scalar_t>();
    scalar_t* rstds = rstd.data_ptr<scalar_t>();
    const scalar_t* ws = pointer<scalar_t>(w);
    const scalar_t* bs = pointer<scalar_t>(b);
    over_rows<scalar_t>(mean.numel(), width, {}, [&](int64_t i, scalar_t* const*) {
      const scalar_t* row = xs + i * width;
      auto [mu, r] = moments(row, width, true, eps);
      means[i] = mu;
      rstds[i] = r;
      int64_t first = (i % shape.groups) * shape.size;
      for (int64_t k = 0; k < shape.size; ++k) {
        int64_t c = first + k;
        scalar_t scale = ws != nullptr ? r * ws[c] : r;
        int64_t offset = i * width + k * shape.length;
        normalise(ys + offset, xs + offset, shape.length, all(mu), all(scale), all(scalar_t(1)),
                  all(value_at(bs, c)));
      }
    });
  });
  return {output, mean, rstd};
}

// Group norm's first-order backward, one pass per (sample, group) row: the per-channel sums
// Σ dL/dy, Σ dL/dy ∘ x, the group's Σ ĝ = Σ_c w_c Σ dL/dy, Σ ĝ x = Σ_c w_c Σ dL/dy ∘ x, then
// dL/dx = (r w_c) dL/dy + B x + C.
std::vector<Tensor> group_grads_rows(const Tensor& grad, const Tensor& input, const Tensor& weight,
                                     const Tensor& mean, const Tensor& rstd,
                                     const Tensor& grad_mean, const Tensor& grad_rstd,
                                     const Groups& shape, const std::vector<bool>& need) {
  Tensor g = grad.contiguous();
  Tensor x = input.contiguous();
  Tensor w = contiguous(weight);
  Tensor mu = mean.contiguous();
  Tensor r = rstd.contiguous();
  Tensor gm = contiguous(grad_mean);
  Tensor gr = contiguous(grad_rstd);
  Tensor grad_input = need[0] ? at::empty_like(x) : Tensor();
  Tensor grad_weight = need[1] ? at::empty({shape.channels}, x.options()) : Tensor();
  Tensor grad_bias = need[2] ? at::empty({shape.channels}, x.options()) : Tensor();
  int64_t width = shape.width();
  int64_t length = shape.length;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "manualgrad_group_norm_grads", [&] {
    const scalar_t* gs = g.const_data_ptr<scalar_t>();
    const scalar_t* xs = x.const_data_ptr<scalar_t>();
    const scalar_t* ws = pointer<scalar_t>(w);
    const scalar_t* means = mu.const_data_ptr<scalar_t>();
    const scalar_t* rstds = r.const_data_ptr<scalar_t>();
    const scalar_t* grad_means = pointer<scalar_t>(gm);
    const scalar_t* grad_rstds = pointer<scalar_t>(gr);
    // Σ dL/dy and Σ dL/dy ∘ (x − μ) per (sample, channel)
    std::vector<scalar_t> per_cell(2 * shape.batch * shape.channels);
    scalar_t* sums = per_cell.data();
    scalar_t* centred_sums = sums + shape.batch * shape.channels;
    scalar_t* dx = need[0] ? grad_input.data_ptr<scalar_t>() : nullptr;
    over_rows<scalar_t>(mu.numel(), width, {}, [&](int64_t i, scalar_t* const*) {
      int64_t first = (i % shape.groups) * shape.size;
      int64_t cell = (i / shape.groups) * shape.channels + first;  // (n, first channel)
      scalar_t mu = means[i];
      scalar_t group_grad(0);
      scalar_t group_centred(0);
      for (int64_t k = 0; k < shape.size; ++k) {
        const scalar_t* gk = gs + i * width + k * length;
        const scalar_t* xk = xs + i * width + k * length;
        std::tie(sums[cell + k], centred_sums[cell + k]) =
            row_sums<scalar_t>(length, [&](int64_t j, auto tag) {
              using V = decltype(tag);
              V gj = load(gk + j, tag);
              return std::pair<V, V>(gj, gj * (load(xk + j, tag) - V(mu)));
            });
        scalar_t wc = ws != nullptr ? ws[first + k] : scalar_t(1);
        group_grad += wc * sums[cell + k];
        group_centred += wc * centred_sums[cell + k];
      }
      if (dx == nullptr) {
        return;
      }
      auto [b, c] = coefficients(group_grad, group_centred, mu, rstds[i], width,
                                 value_at(grad_means, i), value_at(grad_rstds, i), true);
      for (int64_t k = 0; k < shape.size; ++k) {
        int64_t offset = i * width + k * length;
        scalar_t scale = ws != nullptr ? rstds[i] * ws[first + k] : rstds[i];
        input_grad_row<false>(dx + offset, gs + offset, each(xs + offset), length, all(scale),
                              all(scalar_t(1)), all(b), all(c),
                              static_cast<const scalar_t*>(nullptr));
      }
    });
    // dL/dw_c = Σ_n r Σ dL/dy ∘ (x − μ),  dL/db_c = Σ_n Σ dL/dy
    scalar_t* dw = pointer_of<scalar_t>(grad_weight);
    scalar_t* db = pointer_of<scalar_t>(grad_bias);
    for (scalar_t* out : {dw, db}) {
      if (out != nullptr) {
        std::fill(out, out + shape.channels, scalar_t(0));
      }
    }
    for (int64_t n = 0; n < shape.batch; ++n) {
      for (int64_t c = 0; c < shape.channels; ++c) {
        int64_t cell = n * shape.channels + c;
        int64_t group = n * shape.groups + c / shape.size;
        if (dw != nullptr) {
          dw[c] += rstds[group] * centred_sums[cell];
        }
        if (db != nullptr) {
          db[c] += sums[cell];
        }
      }
    }
  });
  return {grad_input, grad_weight, grad_bias};
}

// GroupNormFunction.backward in composite ops.
std::vector<Tensor> group_grads_composite(const Tensor& grad, const Tensor& input,
                                          const Tensor& weight, const Tensor& mean,
                                          const Tensor& rstd, const Tensor& grad_mean,
                                          const Tensor& grad_rstd, const Groups& shape,
                                          const std::vector<bool>& need) {
  std::vector<int64_t> flat{shape.batch, shape.channels, shape.length};
  Tensor x = input.reshape(flat);
  Tensor g = grad.reshape(flat);
  Tensor sum_grad = g.sum(2, true);
  Tensor sum_grad_input = (g * x).sum(2, true);
  auto per_channel = [&](const Tensor& per_group) {  // (N, G) → (N, C, 1)
    return shape.per_channel(per_group).unsqueeze(2);
  };
  auto group_sum = [&](const Tensor& t) {  // (N, C, 1) → its group's sum on each channel
    return per_channel(t.reshape({shape.batch, shape.groups, shape.size}).sum(2));
  };
  Tensor w = weight.defined() ? weight.reshape({shape.channels, 1}) : weight;
  auto weighted = [&](const Tensor& t) { return w.defined() ? w * t : t; };
  Tensor mean_c = per_channel(mean);
  Tensor rstd_c = per_channel(rstd);
  Tensor grad_input, grad_weight, grad_bias;
  if (need[0]) {
    grad_input = composite_input_grad(
        g, x, group_sum(weighted(sum_grad)), group_sum(weighted(sum_grad_input)), mean_c, rstd_c,
        shape.width(), grad_mean.defined() ? per_channel(grad_mean) : grad_mean,
        grad_rstd.defined() ? per_channel(grad_rstd) : grad_rstd, w.defined() ? rstd_c * w : rstd_c,
        Tensor());
    grad_input = grad_input.view(grad.sizes());
  }
  if (need[1]) {
    grad_weight = (rstd_c * (sum_grad_input - mean_c * sum_grad)).sum(0).reshape({-1});
  }
  if (need[2]) {
    grad_bias = sum_grad.sum(0).reshape({-1});
  }
  return {grad_input, grad_weight, grad_bias};
}

}  // namespace

// Python: manualgrad.functional.normalization.GroupNormFunction.
struct GroupNormTwin : public CentredNorm<GroupNormTwin> {
  static std::vector<Tensor> outputs(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                     int64_t groups, double eps) {
    return group_forward(input, weight, bias, Groups(input, groups), eps);
  }
  static std::vector<Tensor> gradients(const Tensor& grad, const Tensor& input,
                                       const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                                       const Tensor& grad_mean, const Tensor& grad_rstd,
                                       int64_t groups, const std::vector<bool>& need) {
    Tensor g = grad_or_zeros(grad, input);
    bool rows = first_order({g, input, weight, mean, rstd, grad_mean, grad_rstd});
    auto compute = rows ? group_grads_rows : group_grads_composite;
    return compute(g, input, weight, mean, rstd, grad_mean, grad_rstd, Groups(input, groups), need);
  }
};

namespace {

// ---- batch norm ---------------------------------------------------------------------------

// A batch norm's input as (N, C, L): channel c's M = N·L cells are the N contiguous segments
// (n, c) of L (the rows n·C + c of the (N·C, L) matrix). Images (L of a vector at least) are
// read a segment at a time, the per-channel factors as scalars, as torch's contiguous kernels;
// short segments (BatchNorm1d: L = 1) a sample at a time instead, as the columns of the
// (N, C·L) matrix, the factors laid out per column (torch treats N×C×1 as channels-last).
struct Channels {
  int64_t batch, channels, length;
  explicit Channels(const Tensor& input)
      : batch(input.size(0)),
        channels(input.size(1)),
        length(c10::multiply_integers(input.sizes().slice(2))) {
  }
  int64_t width() const {  // C·L: one sample
    return channels * length;
  }
  int64_t count() const {  // M: the cells of one channel
    return batch * length;
  }
  template <typename T>
  bool segments() const {
    return length >= Vec<T>::size();
  }
};

// body(c) for each channel c, channels in parallel (kGrain cells per thread at least).
template <typename Body>
void over_channels(const Channels& shape, const Body& body) {
  int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(shape.count(), 1));
  at::parallel_for(0, shape.channels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      body(c);
    }
  });
}

// Per channel, the sum of the column sums `sums` (C·L) over its columns.
template <typename T>
T channel_sum(const T* sums, int64_t c, int64_t length) {
  const T* first = sums + c * length;
  return row_sum<T>(length, [&](int64_t j, auto tag) { return load(first + j, tag); });
}

// data[c·L … c·L + L − 1] = per_channel[c] for every channel: per-channel values per column.
template <typename T>
void per_column(T* data, const T* per_channel, const Channels& shape) {
  for (int64_t c = 0; c < shape.channels; ++c) {
    std::fill(data + c * shape.length, data + (c + 1) * shape.length, per_channel[c]);
  }
}

// Per channel c, (Σ first, Σ second) of terms(j, V, m) = (first, second) over its cells j
// (offsets into the (N, C, L) data), m = centres[c] as a V (0 without centres), into
// firsts[c], seconds[c]: a channel's segments in turn, or per-thread column sums over samples.
template <typename T, typename Terms>
void channel_sums(const Channels& shape, const T* centres, T* firsts, T* seconds,
                  const Terms& terms) {
  int64_t length = shape.length;
  if (shape.segments<T>()) {
    over_channels(shape, [&](int64_t c) {
      auto centre = all(centres != nullptr ? centres[c] : T(0));
      T first(0);
      T second(0);
      for (int64_t n = 0; n < shape.batch; ++n) {
        int64_t offset = (n * shape.channels + c) * length;
        auto sums = row_sums<T>(
            length, [&](int64_t l, auto tag) { return terms(offset + l, tag, centre.at(l, tag)); });
        first += sums.first;
        second += sums.second;
      }
      firsts[c] = first;
      seconds[c] = second;
    });
    return;
  }
  int64_t width = shape.width();
  std::vector<T> buffers(3 * width, T(0));  // the centres, then both column sums, per column
  T* centre = buffers.data();
  if (centres != nullptr) {
    per_column(centre, centres, shape);
  }
  over_rows<T>(shape.batch, width, {centre + width, centre + 2 * width},
               [&](int64_t n, T* const* own) {
                 strip<T>(width, [&](int64_t j, auto tag) {
                   auto [first, second] = terms(n * width + j, tag, load(centre + j, tag));
                   store(own[0] + j, load(own[0] + j, tag) + first);
                   store(own[1] + j, load(own[1] + j, tag) + second);
                 });
               });
  for (int64_t c = 0; c < shape.channels; ++c) {
    firsts[c] = channel_sum(centre + width, c, length);
    seconds[c] = channel_sum(centre + 2 * width, c, length);
  }
}

// y = ((x − m)·s)·1 + t (the row kernels' normalise) with per-channel m, s, t, or
// dL/dx = (dL/dy·s)·1 + x·B + C (input_grad_row, x all 0 in eval mode): a kernel over the
// (N·C, L) segments given all(factor) per channel, or over the (N, C·L) samples given each(its
// per-column copy).
template <typename T, typename Kernel>
void per_channel_pass(const Channels& shape, std::initializer_list<const T*> factors,
                      const Kernel& kernel) {
  std::vector<const T*> per_channel(factors);
  if (shape.segments<T>()) {
    over_rows<T>(shape.batch * shape.channels, shape.length, {}, [&](int64_t i, T* const*) {
      int64_t c = i % shape.channels;
      kernel(i * shape.length, shape.length, [&](int64_t k) { return all(per_channel[k][c]); });
    });
    return;
  }
  int64_t width = shape.width();
  std::vector<T> columns(per_channel.size() * width);
  T* data = columns.data();
  for (size_t k = 0; k < per_channel.size(); ++k) {
    per_column(data + k * width, per_channel[k], shape);
  }
  over_rows<T>(shape.batch, width, {}, [&](int64_t n, T* const*) {
    kernel(n * width, width, [&](int64_t k) { return each<T>(data + k * width); });
  });
}

// Batch norm's forward in row kernels: training: per channel μ = Σ x/M, v = Σ (x − μ)²/M (two
// passes), y = (x − μ)·(r w) + b; eval: y = x·(r w) + (b − μ r w).
std::vector<Tensor> batch_forward(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                  const std::optional<Tensor>& running_mean,
                                  const std::optional<Tensor>& running_var, bool training,
                                  double momentum, double eps) {
  Tensor x = input.contiguous();
  Tensor w = contiguous(weight);
  Tensor b = contiguous(bias);
  Channels shape(x);
  Tensor output = at::empty_like(x);
  Tensor mean = training ? at::empty({shape.channels}, x.options())
                         : running_mean->clone(at::MemoryFormat::Contiguous);
  Tensor var = training ? at::empty({shape.channels}, x.options()) : running_var->contiguous();
  Tensor rstd = at::empty({shape.channels}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "manualgrad_batch_norm_forward", [&] {
    const scalar_t* xs = x.const_data_ptr<scalar_t>();
    const scalar_t* ws = pointer<scalar_t>(w);
    const scalar_t* bs = pointer<scalar_t>(b);
    scalar_t* means = mean.data_ptr<scalar_t>();
    scalar_t* vars = var.data_ptr<scalar_t>();
    scalar_t* rstds = rstd.data_ptr<scalar_t>();
    std::vector<scalar_t> factors(3 * shape.channels);  // y = (x − m)·s + t
    scalar_t* centres = factors.data();
    scalar_t* scales = centres + shape.channels;
    scalar_t* shifts = scales + shape.channels;
    auto count = static_cast<scalar_t>(shape.count());
    if (training) {  // Σ x, then Σ (x − μ)² (each pass's second sum unused)
      channel_sums(shape, static_cast<const scalar_t*>(nullptr), means, vars,
                   [xs](int64_t j, auto tag, auto) {
                     auto value = load(xs + j, tag);
                     return std::pair(value, value);
                   });
      for (int64_t c = 0; c < shape.channels; ++c) {
        means[c] /= count;
      }
      channel_sums(shape, static_cast<const scalar_t*>(means), rstds, vars,
                   [xs](int64_t j, auto tag, auto centre) {
                     auto centred = load(xs + j, tag) - centre;
                     return std::pair(centred, centred * centred);
                   });
      for (int64_t c = 0; c < shape.channels; ++c) {
        vars[c] /= count;
      }
    }
    for (int64_t c = 0; c < shape.channels; ++c) {
      rstds[c] = scalar_t(1) / std::sqrt(vars[c] + static_cast<scalar_t>(eps));
      scales[c] = ws != nullptr ? rstds[c] * ws[c] : rstds[c];
      centres[c] = training ? means[c] : scalar_t(0);  // training: (x − μ)·s + b
      shifts[c] = training ? value_at(bs, c) : value_at(bs, c) - means[c] * scales[c];
    }
    scalar_t* ys = output.data_ptr<scalar_t>();
    per_channel_pass<scalar_t>(
        shape, {centres, scales, shifts}, [&](int64_t offset, int64_t n, const auto& factor) {
          normalise(ys + offset, xs + offset, n, factor(0), factor(1), all(scalar_t(1)), factor(2));
        });
  });
  if (training && running_mean.has_value()) {
    running_mean->mul_(1 - momentum).add_(mean, momentum);
  }
  if (training && running_var.has_value()) {  // the unbiased variance v·M/(M − 1)
    double unbiased = static_cast<double>(shape.count()) / std::max<int64_t>(shape.count() - 1, 1);
    running_var->mul_(1 - momentum).add_(var * unbiased, momentum);
  }
  return {output, mean, rstd};
}

// Batch norm's first-order backward: per channel Σ dL/dy, Σ dL/dy ∘ (x − μ) (one pass), then
// dL/dx = (r w) dL/dy + B x + C (training) or (r w) dL/dy (eval) in one pass.
std::vector<Tensor> batch_grads_rows(const Tensor& grad, const Tensor& input, const Tensor& weight,
                                     const Tensor& mean, const Tensor& rstd,
                                     const Tensor& grad_mean, const Tensor& grad_rstd,
                                     bool training, const std::vector<bool>& need) {
  Tensor g = grad.contiguous();
  Tensor x = contiguous(input);
  Tensor w = contiguous(weight);
  Tensor gm = contiguous(grad_mean);
  Tensor gr = contiguous(grad_rstd);
  Channels shape(g);
  bool with_input = x.defined() && (need[1] || (training && need[0]));
  Tensor grad_input = need[0] ? at::empty_like(g) : Tensor();
  Tensor grad_weight = need[1] ? at::empty({shape.channels}, g.options()) : Tensor();
  Tensor grad_bias = at::empty({shape.channels}, g.options());  // Σ dL/dy
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "manualgrad_batch_norm_grads", [&] {
    const scalar_t* gs = g.const_data_ptr<scalar_t>();
    const scalar_t* xs = pointer<scalar_t>(x);
    const scalar_t* ws = pointer<scalar_t>(w);
    const scalar_t* means = mean.const_data_ptr<scalar_t>();
    const scalar_t* rstds = rstd.const_data_ptr<scalar_t>();
    scalar_t* sum_grad = grad_bias.data_ptr<scalar_t>();
    std::vector<scalar_t> factors(4 * shape.channels);
    scalar_t* centred_sums = factors.data();           // Σ dL/dy ∘ (x − μ)
    scalar_t* scales = centred_sums + shape.channels;  // dL/dx = (g·s) + x·B + C
    scalar_t* coefs_x = scales + shape.channels;
    scalar_t* coefs_1 = coefs_x + shape.channels;
    flag(with_input, [&](auto input_sums) {
      channel_sums(shape, means, sum_grad, centred_sums,
                   [gs, xs](int64_t j, auto tag, auto centre) {
                     auto gj = load(gs + j, tag);
                     if constexpr (decltype(input_sums)::value) {
                       return std::pair(gj, gj * (load(xs + j, tag) - centre));
                     } else {
                       return std::pair(gj, decltype(tag)(scalar_t(0)));
                     }
                   });
    });
    for (int64_t c = 0; c < shape.channels; ++c) {
      if (need[1]) {  // dL/dw = r (Σ dL/dy ∘ x − μ Σ dL/dy)
        grad_weight.data_ptr<scalar_t>()[c] = rstds[c] * centred_sums[c];
      }
      scalar_t wc = ws != nullptr ? ws[c] : scalar_t(1);
      scales[c] = ws != nullptr ? rstds[c] * wc : rstds[c];
      std::pair<scalar_t, scalar_t> coefs{scalar_t(0), scalar_t(0)};
      if (training && need[0]) {
        coefs = coefficients(wc * sum_grad[c], wc * centred_sums[c], means[c], rstds[c],
                             shape.count(), value_at(pointer<scalar_t>(gm), c),
                             value_at(pointer<scalar_t>(gr), c), true);
      }
      coefs_x[c] = coefs.first;
      coefs_1[c] = coefs.second;
    }
    if (!need[0]) {
      return;
    }
    scalar_t* dx = grad_input.data_ptr<scalar_t>();
    select(training ? xs : nullptr, scalar_t(0), [&](auto inputs) {
      per_channel_pass<scalar_t>(
          shape, {scales, coefs_x, coefs_1}, [&](int64_t offset, int64_t n, const auto& factor) {
            input_grad_row<false>(dx + offset, gs + offset, inputs.shifted(offset), n, factor(0),
                                  all(scalar_t(1)), factor(1), factor(2),
                                  static_cast<const scalar_t*>(nullptr));
          });
    });
  });
  return {grad_input, grad_weight, need[2] ? grad_bias : Tensor()};
}

// BatchNormFunction.backward in composite ops.
std::vector<Tensor> batch_grads_composite(const Tensor& grad, const Tensor& input,
                                          const Tensor& weight, const Tensor& mean,
                                          const Tensor& rstd, const Tensor& grad_mean,
                                          const Tensor& grad_rstd, bool training,
                                          const std::vector<bool>& need) {
  std::vector<int64_t> dims{0};
  std::vector<int64_t> shape(grad.dim(), 1);
  shape[1] = grad.size(1);
  for (int64_t d = 2; d < grad.dim(); ++d) {
    dims.push_back(d);
  }
  int64_t count = grad.numel() / std::max<int64_t>(grad.size(1), 1);
  Tensor mu = mean.reshape(shape);
  Tensor r = rstd.reshape(shape);
  Tensor w = weight.defined() ? weight.reshape(shape) : weight;
  auto weighted = [&](const Tensor& t) { return w.defined() ? w * t : t; };
  Tensor scale = weighted(r);
  Tensor sum_grad = grad.sum(dims, true);
  Tensor sum_grad_input;
  if (need[1] || (training && need[0])) {
    sum_grad_input = (grad * input).sum(dims, true);
  }
  Tensor grad_input, grad_weight;
  if (need[0] && training) {
    grad_input = composite_input_grad(
        grad, input, weighted(sum_grad), weighted(sum_grad_input), mu, r, count,
        grad_mean.defined() ? grad_mean.reshape(shape) : grad_mean,
        grad_rstd.defined() ? grad_rstd.reshape(shape) : grad_rstd, scale, Tensor());
  } else if (need[0]) {
    grad_input = grad * scale;
  }
  if (need[1]) {
    grad_weight = (r * (sum_grad_input - mu * sum_grad)).reshape({-1});
  }
  return {grad_input, grad_weight, need[2] ? sum_grad.reshape({-1}) : Tensor()};
}

}  // namespace

// Python: manualgrad.functional.normalization.BatchNormFunction.
struct BatchNormTwin : public TwinFunction<BatchNormTwin> {
  static variable_list forward(TwinContext* ctx, const Tensor& input,
                               const std::optional<Tensor>& weight,
                               const std::optional<Tensor>& bias,
                               const std::optional<Tensor>& running_mean,
                               const std::optional<Tensor>& running_var, bool training,
                               double momentum, double eps) {
    ctx->set_materialize_grads(false);
    Tensor w = value_or_undefined(weight);
    Tensor b = value_or_undefined(bias);
    ctx->saved_data["weight"] = w.defined();
    ctx->saved_data["bias"] = b.defined();
    ctx->saved_data["running_mean"] = running_mean.has_value();
    ctx->saved_data["running_var"] = running_var.has_value();
    ctx->saved_data["training"] = training;
    ctx->saved_data["empty"] = input.numel() == 0;
    if (input.numel() == 0) {  // nothing to normalise, running stats untouched (as torch)
      ctx->saved_data["sizes"] =
          std::vector<int64_t>{w.defined() ? w.numel() : 0, b.defined() ? b.numel() : 0};
      variable_list outputs{input.clone(), at::empty({input.size(1)}, input.options()),
                            at::empty({input.size(1)}, input.options())};
      if (!training) {  // constants, as the statistics of a non-empty eval batch
        ctx->mark_non_differentiable({outputs[1], outputs[2]});
      }
      return outputs;
    }
    auto outputs = batch_forward(input, w, b, running_mean, running_var, training, momentum, eps);
    if (!training) {
      ctx->mark_non_differentiable({outputs[1], outputs[2]});
    }
    bool keep_input = (w.defined() && w.requires_grad()) || (training && input.requires_grad());
    ctx->save_for_backward({keep_input ? input : Tensor(), w, outputs[1], outputs[2]});
    return outputs;
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto need =
        needs(ctx, {true, ctx->saved_data["weight"].toBool(), ctx->saved_data["bias"].toBool()});
    bool training = ctx->saved_data["training"].toBool();
    bool empty = ctx->saved_data["empty"].toBool();
    variable_list result(8);
    if (!grads[0].defined() && (empty || !training)) {
      return result;  // only μ, r were reached, and they are constants here
    }
    if (empty) {  // nothing normalised: every gradient is zero
      auto sizes = ctx->saved_data["sizes"].toIntVector();
      result[0] = need[0] ? at::zeros_like(grads[0]) : Tensor();
      result[1] = need[1] ? grads[0].new_zeros({sizes[0]}) : Tensor();
      result[2] = need[2] ? grads[0].new_zeros({sizes[1]}) : Tensor();
      return result;
    }
    auto saved = ctx->get_saved_variables();
    Tensor g = grad_or_zeros(grads[0], saved[0]);
    bool rows = first_order({g, saved[0], saved[1], saved[2], saved[3], grads[1], grads[2]});
    auto backward = rows ? batch_grads_rows : batch_grads_composite;
    auto grads_out =
        backward(g, saved[0], saved[1], saved[2], saved[3], grads[1], grads[2], training, need);
    std::copy(grads_out.begin(), grads_out.end(), result.begin());
    return result;
  }
};

std::vector<Tensor> layer_norm(const Tensor& input, const std::optional<Tensor>& weight,
                               const std::optional<Tensor>& bias, int64_t dims, double eps) {
  return LayerNormTwin::apply(input, weight, bias, dims, eps);
}

std::vector<Tensor> rms_norm(const Tensor& input, const std::optional<Tensor>& weight, int64_t dims,
                             double eps) {
  return RMSNormTwin::apply(input, weight, dims, eps);
}

std::vector<Tensor> add_norm(const Tensor& input, const Tensor& residual,
                             const std::optional<Tensor>& weight, const std::optional<Tensor>& bias,
                             int64_t dims, double eps, std::string kind) {
  return AddNormTwin::apply(input, residual, weight, bias, dims, eps, std::move(kind));
}

std::vector<Tensor> group_norm(const Tensor& input, const std::optional<Tensor>& weight,
                               const std::optional<Tensor>& bias, int64_t groups, double eps) {
  return GroupNormTwin::apply(input, weight, bias, groups, eps);
}

std::vector<Tensor> batch_norm(const Tensor& input, const std::optional<Tensor>& weight,
                               const std::optional<Tensor>& bias,
                               const std::optional<Tensor>& running_mean,
                               const std::optional<Tensor>& running_var, bool training,
                               double momentum, double eps) {
  return BatchNormTwin::apply(input, weight, bias, running_mean, running_var, training, momentum,
                              eps);
}

}  // namespace manualgrad
