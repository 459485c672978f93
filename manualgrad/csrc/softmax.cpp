// C++ twins of manualgrad.functional.softmax (see twins.h).
//
// Along the innermost dimension of a contiguous tensor (every later size 1: the rows of a
// (rows, width) matrix, the usual case) forward and first-order backward are one-pass row
// kernels: each row is read from memory once (its max, its Σ, its output written while it is
// in cache), rows in parallel. Along any other dimension, and with grad mode on inside backward
// (double backward), they are the Python Functions' composite ATen ops.

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>

#include <algorithm>
#include <tuple>

#include "common.h"
#include "twins.h"

namespace manualgrad {
namespace {

// ---- row kernels --------------------------------------------------------------------------

// Whether `dim` is the rows' dimension of t's memory: t a contiguous float/double plain tensor
// of at least one dimension whose sizes after `dim` are all 1.
bool innermost(const Tensor& t, int64_t dim) {
  if (!fusable(t) || t.dim() == 0 || !t.is_contiguous()) {
    return false;
  }
  for (int64_t d = dim + 1; d < t.dim(); ++d) {
    if (t.size(d) != 1) {
      return false;
    }
  }
  return true;
}

// kernel(out, width, rows of the inputs...) for each row of `width` elements of the inputs
// (contiguous, first's shape), into a new contiguous tensor; rows in parallel, a chunk at least
// ATen's grain of elements.
template <typename Kernel, typename... Inputs>
Tensor by_rows(int64_t width, const Kernel& kernel, const Tensor& first, const Inputs&... rest) {
  Tensor output = at::empty_like(first, at::MemoryFormat::Contiguous);
  if (output.numel() == 0) {
    return output;
  }
  int64_t rows = output.numel() / width;
  int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / width);
  AT_DISPATCH_FLOATING_TYPES(first.scalar_type(), "manualgrad_rows", [&] {
    scalar_t* out = output.mutable_data_ptr<scalar_t>();
    auto bases = std::make_tuple(first.const_data_ptr<scalar_t>(),
                                 rest.template const_data_ptr<scalar_t>()...);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t offset = begin * width; offset < end * width; offset += width) {
        std::apply([&](auto... base) { kernel(out + offset, width, (base + offset)...); }, bases);
      }
    });
  });
  return output;
}

// z − max_dim z, a fresh tensor (an empty tensor has no max: its copy).
Tensor shifted(const Tensor& input, int64_t dim) {
  if (input.numel() == 0) {
    return input.clone();
  }
  return input - input.amax(dim, true);
}

}  // namespace

// ---- softmax, log_softmax -----------------------------------------------------------------

// A normalisation along ``dim`` whose Jacobian is a function of its output y: forward
// Self::value (Self::row_value on rows, else Self::composite), save y only, dL/dz =
// Self::gradient(y, dL/dy, dim) (Self::row_gradient on rows when first order, else composite).
template <typename Self>
struct AlongDim : public TwinFunction<Self> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, int64_t dim) {
    Tensor output = innermost(input, dim)
                        ? by_rows(input.size(dim), [](auto... row) { Self::row_value(row...); },
                                  input)
                        : Self::composite(input, dim);
    ctx->saved_data["dim"] = dim;
    ctx->save_for_backward({output});
    return output;
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    Tensor output = ctx->get_saved_variables()[0];
    const Tensor& grad = grads[0];
    int64_t dim = ctx->saved_data["dim"].toInt();
    bool rows = !at::GradMode::is_enabled() && innermost(output, dim) && fusable(grad) &&
                grad.scalar_type() == output.scalar_type();
    Tensor grad_input =
        rows ? by_rows(output.size(dim), [](auto... row) { Self::row_gradient(row...); }, output,
                       grad.contiguous())
             : Self::gradient(output, grad, dim);
    return {grad_input, Tensor()};
  }
};

// Python: manualgrad.functional.softmax.SoftmaxFunction.
struct SoftmaxTwin : public AlongDim<SoftmaxTwin> {
  static Tensor composite(const Tensor& input, int64_t dim) {
    Tensor exps = shifted(input, dim).exp_();
    return exps.div_(exps.sum(dim, true));
  }
  // y = e^{z − m} / Σ e^{z − m}, m = max z: the row's max; its exps written and summed in one
  // pass; divided.
  template <typename T>
  static void row_value(T* y, int64_t width, const T* z) {
    Vec<T> max(row_max(z, width));
    Vec<T> sums(T(0));
    int64_t d = 0;
    for (; d + Vec<T>::size() <= width; d += Vec<T>::size()) {
      Vec<T> exps = (Vec<T>::loadu(z + d) - max).exp();
      exps.store(y + d);
      sums = sums + exps;
    }
    if (d < width) {
      int64_t tail = width - d;
      Vec<T> exps = (Vec<T>::loadu(z + d, tail) - max).exp();
      exps.store(y + d, tail);
      sums = sums + Vec<T>::set(Vec<T>(T(0)), exps, tail);
    }
    Vec<T> total(at::vec::vec_reduce_all<T>([](Vec<T> a, Vec<T> b) { return a + b; }, sums));
    at::vec::map([total](Vec<T> v) { return v / total; }, y, y, width);
  }
  static Tensor gradient(const Tensor& output, const Tensor& grad, int64_t dim) {
    // dL/dz = y ⊙ (g − Σ_dim g ⊙ y)
    Tensor dot = (grad * output).sum(dim, true);
    return times(grad - dot, output);
  }
  template <typename T>
  static void row_gradient(T* out, int64_t width, const T* y, const T* g) {
    Vec<T> dot(row_reduce<T>(
        width, T(0), [](Vec<T> a, Vec<T> b) { return b * a; }, plus<T>, y, g));
    at::vec::map2([dot](Vec<T> y, Vec<T> g) { return (g - dot) * y; }, out, y, g, width);
  }
};

// Python: manualgrad.functional.softmax.LogSoftmaxFunction (log_softmax_values).
struct LogSoftmaxTwin : public AlongDim<LogSoftmaxTwin> {
  static Tensor composite(const Tensor& input, int64_t dim) {
    Tensor values = shifted(input, dim);
    return values.sub_(at::exp(values).sum(dim, true).log_());
  }
  // y = (z − m) − log Σ e^{z − m}, m = max z: the row's max, its Σ exp, written.
  template <typename T>
  static void row_value(T* y, int64_t width, const T* z) {
    Vec<T> max(row_max(z, width));
    T total = row_reduce<T>(width, T(0), [max](Vec<T> v) { return (v - max).exp(); }, plus<T>, z);
    Vec<T> log_total(std::log(total));
    at::vec::map([max, log_total](Vec<T> v) { return (v - max) - log_total; }, y, z, width);
  }
  static Tensor gradient(const Tensor& output, const Tensor& grad, int64_t dim) {
    // dL/dz = g − e^{y} ⊙ Σ_dim g
    Tensor total = grad.sum(dim, true);
    return grad - times(at::exp(output), total);
  }
  template <typename T>
  static void row_gradient(T* out, int64_t width, const T* y, const T* g) {
    Vec<T> total(row_sum(g, width));
    at::vec::map2([total](Vec<T> y, Vec<T> g) { return g - y.exp() * total; }, out, y, g, width);
  }
};

Tensor softmax(const Tensor& input, int64_t dim) {
  return SoftmaxTwin::apply(input, dim);
}
Tensor log_softmax(const Tensor& input, int64_t dim) {
  return LogSoftmaxTwin::apply(input, dim);
}

}  // namespace manualgrad
