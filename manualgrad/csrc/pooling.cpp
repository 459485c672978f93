// C++ twins of manualgrad.functional.pooling's MaxPool2dFunction, AvgPool2dFunction,
// AdaptiveAvgPool2dFunction and AdaptiveMaxPool2dFunction (see twins.h).
//
// The max pools' forward is a selection with the Python Functions' winner rule, so values and
// indices are theirs exactly (the fixed windows' running maxima vectorised over an output row, the
// adaptive windows' maximum a vectorised reduction, then its first cell); their backward is the
// scatter-add of dL/dy at the saved indices (a loop when first order; at::scatter_add, whose
// derivative is a gather, when grad mode is on). The average pools are linear maps computed with
// the Python Functions' own ops (a depthwise convolution with a kernel of ones, the tile mean,
// the averaging matrices), so their results are the same rounding for rounding.

#include "common.h"
#include "twins.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>

namespace manualgrad {

namespace {

using Ints = std::vector<int64_t>;

// Planes per parallel chunk: about 32k cells each.
int64_t plane_grain(int64_t plane_size) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, plane_size));
}

// A (…, h, w) shape from x's leading dims.
Ints pooled_shape(const Tensor& input, int64_t height, int64_t width) {
  Ints shape(input.sizes().begin(), input.sizes().end() - 2);
  shape.push_back(height);
  shape.push_back(width);
  return shape;
}

// The number of (H, W) planes of x (0 when a plane is empty).
int64_t planes_of(const Tensor& x) {
  int64_t plane_size = x.size(-2) * x.size(-1);
  return plane_size == 0 ? 0 : x.numel() / plane_size;
}

// body(p) for every plane p, in parallel chunks of about 32k cells.
template <typename Body>
void over_planes(int64_t planes, int64_t plane_size, const Body& body) {
  at::parallel_for(0, planes, plane_grain(plane_size), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      body(p);
    }
  });
}

// pooling._Window over an H × W plane: window (i, j) starts at (i·s_h − p_h, j·s_w − p_w) and
// reads every d-th cell, k per dim; cells() visits its cells inside the plane (the padding is
// −∞ for the max pool and 0 for the average, so neither needs its cells), row-major.
struct FixedWindows {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw, height, width;
  FixedWindows(const PoolWindow& window, int64_t height, int64_t width)
      : kh(window.kernel[0]), kw(window.kernel[1]), sh(window.stride[0]), sw(window.stride[1]),
        ph(window.padding[0]), pw(window.padding[1]), dh(window.dilation[0]),
        dw(window.dilation[1]), height(height), width(width) {}
  template <typename Visit>
  void cells(int64_t i, int64_t j, const Visit& visit) const {
    for (int64_t a = 0; a < kh; ++a) {
      int64_t row = i * sh - ph + a * dh;
      if (row < 0 || row >= height) {
        continue;
      }
      for (int64_t b = 0; b < kw; ++b) {
        int64_t col = j * sw - pw + b * dw;
        if (col >= 0 && col < width) {
          visit(row * width + col);
        }
      }
    }
  }
};

// The max pools' selection over every plane of a contiguous x: row(i, plane, y, indices) writes
// output row i of a plane (the values and the flat indices h·W + w inside the plane) with the
// Python Functions' winner rule; y and the int64 indices.
template <typename Row>
std::vector<Tensor> select_maxima(const Tensor& input, int64_t out_h, int64_t out_w,
                                  const Row& row) {
  Tensor x = input.contiguous();
  int64_t height = x.size(-2), width = x.size(-1);
  Tensor output = at::empty(pooled_shape(x, out_h, out_w), x.options());
  Tensor indices = at::empty(output.sizes(), x.options().dtype(at::kLong));
  int64_t planes = planes_of(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "manualgrad_max_pool", [&] {
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* out = output.mutable_data_ptr<scalar_t>();
    int64_t* arg = indices.mutable_data_ptr<int64_t>();
    over_planes(planes, height * width, [&](int64_t p) {
      const scalar_t* plane = in + p * height * width;
      for (int64_t i = 0, o = p * out_h * out_w; i < out_h; ++i, o += out_w) {
        row(i, plane, out + o, arg + o);
      }
    });
  });
  return {output, indices};
}

// MaxPool2dFunction.backward / _scatter_to_input: dL/dx = dL/dy scatter-added into zeros shaped
// like x at the flat (h·W + w) indices; overlapping windows that pick the same cell add up, in
// output order as scatter_add does.
Tensor scatter_to_input(const Tensor& grad_output, const Tensor& indices, const Ints& shape) {
  int64_t height = shape[shape.size() - 2], width = shape[shape.size() - 1];
  Ints flat(shape.begin(), shape.end() - 2);
  flat.push_back(height * width);
  Tensor flat_indices = indices.flatten(-2);
  if (at::GradMode::is_enabled() || !fusable(grad_output)) {
    return at::zeros(flat, grad_output.options())
        .scatter_add(-1, flat_indices, grad_output.reshape(flat_indices.sizes()))
        .view(shape);
  }
  Tensor g = grad_output.contiguous();
  Tensor idx = flat_indices.contiguous();
  int64_t outputs = idx.size(-1);
  if (outputs == 0) {
    return at::zeros(shape, g.options());
  }
  Tensor grad_input = at::empty(shape, g.options());  // each plane zeroed by its own thread
  int64_t planes = idx.numel() / outputs;
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "manualgrad_max_pool_backward", [&] {
    const scalar_t* gy = g.const_data_ptr<scalar_t>();
    const int64_t* arg = idx.const_data_ptr<int64_t>();
    scalar_t* gx = grad_input.mutable_data_ptr<scalar_t>();
    over_planes(planes, height * width, [&](int64_t p) {
      scalar_t* plane = gx + p * height * width;
      std::fill(plane, plane + height * width, scalar_t(0));
      for (int64_t o = p * outputs; o < (p + 1) * outputs; ++o) {
        plane[arg[o]] += gy[o];
      }
    });
  });
  return grad_input;
}

// The max pools' setup_context and backward: the indices are non-differentiable and the only
// saved tensor.
template <typename Self>
struct MaxSelection : public TwinFunction<Self> {
  static variable_list save(TwinContext* ctx, const Tensor& input,
                            std::vector<Tensor> outputs) {
    ctx->mark_non_differentiable({outputs[1]});
    ctx->save_for_backward({outputs[1]});
    ctx->saved_data["input_shape"] = input.sizes().vec();
    return outputs;
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    Tensor indices = ctx->get_saved_variables()[0];
    return {scatter_to_input(grads[0], indices, ctx->saved_data["input_shape"].toIntVector()),
            Tensor()};
  }
};

// torch's adaptive windows along one dim: [⌊iH/h⌋, ⌈(i+1)H/h⌉) for i < h.
int64_t window_start(int64_t i, int64_t size, int64_t out) {
  return i * size / out;
}
int64_t window_end(int64_t i, int64_t size, int64_t out) {
  return ((i + 1) * size + out - 1) / out;
}

// AvgPool2dFunction's divisor D_rows ⊗ D_cols, (H_out, W_out) in x's dtype.
Tensor divisor(const std::vector<Ints>& divisors, const Tensor& like) {
  const Ints& rows = divisors[0];
  const Ints& cols = divisors[1];
  Tensor result = at::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols.size())},
                            like.options());
  AT_DISPATCH_FLOATING_TYPES(like.scalar_type(), "manualgrad_avg_divisor", [&] {
    scalar_t* d = result.mutable_data_ptr<scalar_t>();
    for (size_t i = 0; i < rows.size(); ++i) {
      for (size_t j = 0; j < cols.size(); ++j) {
        d[i * cols.size() + j] = static_cast<scalar_t>(rows[i]) * static_cast<scalar_t>(cols[j]);
      }
    }
  });
  return result;
}

// A (C, 1, k_h, k_w) kernel of ones for a depthwise convolution over x's channels.
Tensor ones_kernel(const Tensor& like, const Ints& kernel) {
  return at::ones({like.size(-3), 1, kernel[0], kernel[1]}, like.options());
}

// _averaging_matrices: A (out × size), row i holding 1/|window i| over torch's window i.
Tensor averaging_matrix(int64_t size, int64_t out, const Tensor& like) {
  Tensor matrix = at::zeros({out, size}, like.options());
  AT_DISPATCH_FLOATING_TYPES(like.scalar_type(), "manualgrad_averaging_matrix", [&] {
    scalar_t* a = matrix.mutable_data_ptr<scalar_t>();
    for (int64_t i = 0; i < out; ++i) {
      int64_t start = window_start(i, size, out), end = window_end(i, size, out);
      scalar_t share = scalar_t(1) / static_cast<scalar_t>(end - start);
      for (int64_t c = start; c < end; ++c) {
        a[i * size + c] = share;
      }
    }
  });
  return matrix;
}

// _window_means: the ``out`` adaptive window means of x along ``dim``, stacked there.
Tensor window_means(const Tensor& input, int64_t dim, int64_t out) {
  if (out == 0) {
    return input.narrow(dim, 0, 0);
  }
  int64_t size = input.size(dim);
  std::vector<Tensor> means;
  for (int64_t i = 0; i < out; ++i) {
    int64_t start = window_start(i, size, out);
    means.push_back(
        input.narrow(dim, start, window_end(i, size, out) - start).mean(dim, /*keepdim=*/true));
  }
  return at::cat(means, dim);
}

// _tile: the tile (k_h, k_w) when the output size divides the input size.
std::optional<Ints> tile_of(int64_t height, int64_t width, const Ints& output_size) {
  if (output_size[0] != 0 && output_size[1] != 0 && height % output_size[0] == 0 &&
      width % output_size[1] == 0) {
    return Ints{height / output_size[0], width / output_size[1]};
  }
  return std::nullopt;
}

// One kernel cell's turn in the running maxima of an output row: output column j in [lo, hi)
// reads cells[j·stride]; where v > y or v ≠ v, y = v and the winner's ordinal = k (vectorised
// over the columns for a column stride of 1 or 2, the pairs split by deinterleave2).
template <typename T>
void compete(const T* cells, int64_t stride, int64_t lo, int64_t hi, T k, T* best, T* ordinal) {
  using V = Vec<T>;
  int64_t j = lo;
  if (stride == 1 || stride == 2) {
    V cell(k);
    for (; j + V::size() <= hi; j += V::size()) {
      V v = stride == 1 ? V::loadu(cells + j)
                        : at::vec::deinterleave2(V::loadu(cells + 2 * j),
                                                 V::loadu(cells + 2 * j + V::size(), V::size() - 1))
                              .first;
      V y = V::loadu(best + j);
      V replace = (v > y) | (v != v);
      V::blendv(y, v, replace).store(best + j);
      V::blendv(V::loadu(ordinal + j), cell, replace).store(ordinal + j);
    }
  }
  for (; j < hi; ++j) {
    T v = cells[j * stride];
    if (v > best[j] || v != v) {
      best[j] = v;
      ordinal[j] = k;
    }
  }
}

// The first maximum in row-major order (the first NaN if there is one) of rows [row0, row1) ×
// columns [col0, col1) of a plane of the given width, as its flat index: a scan with that rule
// on a window narrower than a vector, else the window's maximum (a vectorised reduction, NaN if
// a cell is) and then the first cell equal to it (or the first NaN), a vector at a time.
template <typename T>
int64_t first_maximum(const T* plane, int64_t width, int64_t row0, int64_t row1, int64_t col0,
                      int64_t col1) {
  int64_t span = col1 - col0;
  if (span == width) {  // whole rows: one span
    span *= row1 - row0;
    row1 = row0 + 1;
  }
  auto first = [&](const auto& wins) {  // wins(v): 1[v is the winner] on a value or a vector
    for (int64_t row = row0; row < row1; ++row) {
      const T* cells = plane + row * width + col0;
      int64_t c = 0;
      for (; c + Vec<T>::size() <= span; c += Vec<T>::size()) {
        uint64_t lanes = ~static_cast<uint64_t>(wins(Vec<T>::loadu(cells + c)).zero_mask()) &
                         ((uint64_t(1) << Vec<T>::size()) - 1);
        if (lanes != 0) {
          return row * width + col0 + c + __builtin_ctzll(lanes);
        }
      }
      for (; c < span; ++c) {
        if (wins(cells[c])) {
          return row * width + col0 + c;
        }
      }
    }
    return row0 * width + col0;
  };
  if (span < Vec<T>::size()) {
    T best = plane[row0 * width + col0];
    int64_t winner = row0 * width + col0;
    for (int64_t row = row0; row < row1; ++row) {
      for (int64_t c = col0; c < col0 + span; ++c) {
        T v = plane[row * width + c];
        if (v > best || (v != v && best == best)) {
          best = v;
          winner = row * width + c;
        }
      }
    }
    return winner;
  }
  auto larger = [](const Vec<T>& a, const Vec<T>& b) { return at::vec::maximum(a, b); };
  T best = plane[row0 * width + col0];
  for (int64_t row = row0; row < row1; ++row) {
    best = maximum_of(best, at::vec::reduce_all<T>(larger, plane + row * width + col0, span));
  }
  if (best != best) {
    return first([](auto v) { return v != v; });
  }
  return first([best](auto v) { return v == decltype(v)(best); });
}

}  // namespace

// Python: manualgrad.functional.pooling.MaxPool2dFunction: window (i, j) starts at
// (i·s_h − p_h, j·s_w − p_w) and reads every d-th cell; the padding (−∞) never wins, so only the
// real cells compete, from torch's initial argmax (the window's first real row and column); a
// cell replaces the winner iff v > y or v ≠ v. As the Python Function's running maxima, the
// kernel cells take their turns in row-major order, each over a whole output row (compete), the
// winner carried as its cell's ordinal a·k_w + b (exact in x's dtype).
struct MaxPool2dTwin : public MaxSelection<MaxPool2dTwin> {
  static variable_list forward(TwinContext* ctx, const Tensor& input,
                               const PoolWindow& window) {
    FixedWindows w(window, input.size(-2), input.size(-1));
    int64_t out_w = window.output[1];
    Ints offsets;  // of kernel cell a·k_w + b from its window's start
    for (int64_t a = 0; a < w.kh; ++a) {
      for (int64_t b = 0; b < w.kw; ++b) {
        offsets.push_back(a * w.dh * w.width + b * w.dw);
      }
    }
    auto row = [&](int64_t i, const auto* plane, auto* best, int64_t* index) {
      using T = std::remove_const_t<std::remove_pointer_t<decltype(plane)>>;
      thread_local std::vector<T> ordinal;
      ordinal.resize(out_w);
      int64_t row0 = i * w.sh - w.ph;
      int64_t first_row = row0 < 0 ? (-row0 + w.dh - 1) / w.dh : 0;  // _first_real
      for (int64_t j = 0; j < out_w; ++j) {
        int64_t col0 = j * w.sw - w.pw;
        int64_t first_col = col0 < 0 ? (-col0 + w.dw - 1) / w.dw : 0;
        best[j] = -std::numeric_limits<T>::infinity();
        ordinal[j] = static_cast<T>(first_row * w.kw + first_col);
      }
      for (int64_t a = 0; a < w.kh; ++a) {
        int64_t r = row0 + a * w.dh;
        if (r < 0 || r >= w.height) {
          continue;
        }
        for (int64_t b = 0; b < w.kw; ++b) {
          int64_t c = b * w.dw - w.pw;  // the column of output column j: j·s_w + c
          int64_t lo = c < 0 ? (-c + w.sw - 1) / w.sw : 0;
          int64_t hi = c < w.width ? std::min(out_w, (w.width - 1 - c) / w.sw + 1) : 0;
          compete(plane + r * w.width + c, w.sw, lo, hi, static_cast<T>(a * w.kw + b), best,
                  ordinal.data());
        }
      }
      for (int64_t j = 0; j < out_w; ++j) {
        index[j] = row0 * w.width + j * w.sw - w.pw + offsets[static_cast<int64_t>(ordinal[j])];
      }
    };
    return save(ctx, input, select_maxima(input, window.output[0], out_w, row));
  }
};

// Python: manualgrad.functional.pooling.AdaptiveMaxPool2dFunction: over torch's adaptive
// windows the winner is the first maximum in row-major window order (the first NaN if the
// window holds one), what the Python Function's separable maxima pick (first_maximum).
struct AdaptiveMaxPool2dTwin : public MaxSelection<AdaptiveMaxPool2dTwin> {
  static variable_list forward(TwinContext* ctx, const Tensor& input, Ints output_size) {
    int64_t height = input.size(-2), width = input.size(-1);
    int64_t out_h = output_size[0], out_w = output_size[1];
    auto row = [=](int64_t i, const auto* plane, auto* value, int64_t* index) {
      int64_t row0 = window_start(i, height, out_h), row1 = window_end(i, height, out_h);
      for (int64_t j = 0; j < out_w; ++j) {
        index[j] = first_maximum(plane, width, row0, row1, window_start(j, width, out_w),
                                 window_end(j, width, out_w));
        value[j] = plane[index[j]];
      }
    };
    return save(ctx, input, select_maxima(input, out_h, out_w, row));
  }
};

// Python: manualgrad.functional.pooling.AvgPool2dFunction: y = (Σ_window x) / D over x zero-padded
// (the padding and the ceil_mode overhang add nothing), the Python Function's depthwise
// convolution with a kernel of ones; dL/dx: every cell of x receives the share dL/dy / D of each
// window containing it, its conv_transpose with the same kernel. Saves nothing. On inputs of at
// most kLoopCells cells (and first order backward), one loop over the windows each way instead:
// the convolutions' fixed cost is most of a small pool (1×16×16×16: 794 → 132 µs forward and
// backward), while on larger ones they are the faster kernels (4×64×32×32: 2.3 ms against the
// loops' 3.7). The loops sum each window in row-major order, not the convolution's.
struct AvgPool2dTwin : public TwinFunction<AvgPool2dTwin> {
  static constexpr int64_t kLoopCells = 1 << 16;

  static Tensor forward(TwinContext* ctx, const Tensor& input, const PoolWindow& window,
                        std::vector<Ints> divisors) {
    ctx->saved_data["input_shape"] = input.sizes().vec();
    ctx->saved_data["kernel"] = window.kernel;
    ctx->saved_data["stride"] = window.stride;
    ctx->saved_data["padding"] = window.padding;
    ctx->saved_data["dilation"] = window.dilation;
    ctx->saved_data["output"] = window.output;
    ctx->saved_data["rows"] = divisors[0];
    ctx->saved_data["cols"] = divisors[1];
    if (input.numel() <= kLoopCells) {
      return loop_means(input.contiguous(), window, divisor(divisors, input));
    }
    Tensor padded = input;
    if (window.overhang[0] != 0 || window.overhang[1] != 0) {
      padded = at::constant_pad_nd(input, {0, window.overhang[1], 0, window.overhang[0]}, 0);
    }
    Tensor sums = at::conv2d(padded, ones_kernel(input, window.kernel), std::nullopt,
                             window.stride, window.padding, window.dilation, input.size(-3));
    return sums.div_(divisor(divisors, sums));
  }

  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto& data = ctx->saved_data;
    Ints shape = data["input_shape"].toIntVector();
    PoolWindow window{data["kernel"].toIntVector(),  data["stride"].toIntVector(),
                      data["padding"].toIntVector(), data["dilation"].toIntVector(),
                      data["output"].toIntVector(),  {0, 0}};
    int64_t height = shape[shape.size() - 2], width = shape[shape.size() - 1];
    const Tensor& grad = grads[0];
    Tensor divisors = divisor({data["rows"].toIntVector(), data["cols"].toIntVector()}, grad);
    if (!at::GradMode::is_enabled() && fusable(grad) &&
        c10::multiply_integers(shape) <= kLoopCells) {
      return {loop_spread(grad.contiguous(), divisors, window, shape), Tensor(), Tensor()};
    }
    Tensor scaled = grad / divisors;
    Ints unread;  // _Window.unread: trailing cells of the padded x that no window reads
    for (size_t d = 0; d < 2; ++d) {
      int64_t reach = window.dilation[d] * (window.kernel[d] - 1) + 1;
      int64_t span = (window.output[d] - 1) * window.stride[d] + reach;
      unread.push_back(
          std::max<int64_t>(0, shape[shape.size() - 2 + d] + 2 * window.padding[d] - span));
    }
    Tensor grad_input = at::conv_transpose2d(scaled, ones_kernel(grad, window.kernel),
                                             std::nullopt, window.stride, window.padding, unread,
                                             shape[shape.size() - 3], window.dilation);
    if (grad_input.size(-2) != height || grad_input.size(-1) != width) {
      grad_input = grad_input.narrow(-2, 0, height).narrow(-1, 0, width);
    }
    return {grad_input, Tensor(), Tensor()};
  }

  // y = (Σ_window x) / D, one loop over the windows of a contiguous x.
  static Tensor loop_means(const Tensor& x, const PoolWindow& window, const Tensor& divisors) {
    FixedWindows windows(window, x.size(-2), x.size(-1));
    int64_t out_h = window.output[0], out_w = window.output[1];
    Tensor output = at::empty(pooled_shape(x, out_h, out_w), x.options());
    Tensor d = divisors.expand({out_h, out_w}).contiguous();
    int64_t plane_size = x.size(-2) * x.size(-1);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "manualgrad_avg_pool", [&] {
      const scalar_t* in = x.const_data_ptr<scalar_t>();
      const scalar_t* divide = d.const_data_ptr<scalar_t>();
      scalar_t* out = output.mutable_data_ptr<scalar_t>();
      over_planes(planes_of(x), out_h * out_w * 4, [&](int64_t p) {
        const scalar_t* plane = in + p * plane_size;
        scalar_t* y = out + p * out_h * out_w;
        for (int64_t i = 0, o = 0; i < out_h; ++i) {
          for (int64_t j = 0; j < out_w; ++j, ++o) {
            scalar_t sum = 0;
            windows.cells(i, j, [&](int64_t cell) { sum += plane[cell]; });
            y[o] = sum / divide[o];
          }
        }
      });
    });
    return output;
  }

  // dL/dx first order: the share s = dL/dy / D of window (i, j) added to each of its cells.
  static Tensor loop_spread(const Tensor& grad, const Tensor& divisors, const PoolWindow& window,
                            const Ints& shape) {
    int64_t height = shape[shape.size() - 2], width = shape[shape.size() - 1];
    FixedWindows windows(window, height, width);
    int64_t out_h = window.output[0], out_w = window.output[1];
    Tensor d = divisors.expand({out_h, out_w}).contiguous();
    Tensor grad_input = at::zeros(shape, grad.options());
    AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "manualgrad_avg_pool_spread", [&] {
      const scalar_t* gy = grad.const_data_ptr<scalar_t>();
      const scalar_t* divide = d.const_data_ptr<scalar_t>();
      scalar_t* gx = grad_input.mutable_data_ptr<scalar_t>();
      over_planes(planes_of(grad_input), height * width, [&](int64_t p) {
        scalar_t* plane = gx + p * height * width;
        const scalar_t* g = gy + p * out_h * out_w;
        for (int64_t i = 0, o = 0; i < out_h; ++i) {
          for (int64_t j = 0; j < out_w; ++j, ++o) {
            scalar_t share = g[o] / divide[o];
            windows.cells(i, j, [&](int64_t cell) { plane[cell] += share; });
          }
        }
      });
    });
    return grad_input;
  }
};

// Python: manualgrad.functional.pooling.AdaptiveAvgPool2dFunction: y = A_h · x · A_wᵀ per plane
// (the tile mean when the output size divides the input's, else the window means themselves);
// dL/dx = A_hᵀ · dL/dy · A_w (the broadcast of dL/dy / (k_h k_w) over each tile). Saves nothing.
struct AdaptiveAvgPool2dTwin : public TwinFunction<AdaptiveAvgPool2dTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, Ints output_size) {
    int64_t height = input.size(-2), width = input.size(-1);
    ctx->saved_data["input_size"] = Ints{height, width};
    ctx->saved_data["output_size"] = output_size;
    if (auto tile = tile_of(height, width, output_size)) {
      Tensor tiles = input.unflatten(-1, {output_size[1], (*tile)[1]})
                         .unflatten(-3, {output_size[0], (*tile)[0]});
      return tiles.mean({-3, -1});
    }
    return window_means(window_means(input, -2, output_size[0]), -1, output_size[1]);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    Ints size = ctx->saved_data["input_size"].toIntVector();
    Ints output_size = ctx->saved_data["output_size"].toIntVector();
    const Tensor& grad = grads[0];
    if (auto tile = tile_of(size[0], size[1], output_size)) {
      double cells = static_cast<double>((*tile)[0] * (*tile)[1]);
      Tensor share = (grad / cells).unsqueeze(-1).unsqueeze(-3);
      Ints spread(share.sizes().begin(), share.sizes().end() - 4);
      Ints flat = spread;
      spread.insert(spread.end(), {output_size[0], (*tile)[0], output_size[1], (*tile)[1]});
      flat.insert(flat.end(), {size[0], size[1]});
      return {share.expand(spread).reshape(flat), Tensor()};
    }
    Tensor rows = averaging_matrix(size[0], output_size[0], grad);
    Tensor cols = averaging_matrix(size[1], output_size[1], grad);
    return {rows.t().matmul(grad.matmul(cols)), Tensor()};
  }
};

std::vector<Tensor> max_pool2d(const Tensor& input, const PoolWindow& window) {
  return MaxPool2dTwin::apply(input, window);
}

Tensor avg_pool2d(const Tensor& input, const PoolWindow& window,
                  std::vector<std::vector<int64_t>> divisors) {
  return AvgPool2dTwin::apply(input, window, divisors);
}

Tensor adaptive_avg_pool2d(const Tensor& input, std::vector<int64_t> output_size) {
  return AdaptiveAvgPool2dTwin::apply(input, output_size);
}

std::vector<Tensor> adaptive_max_pool2d(const Tensor& input, std::vector<int64_t> output_size) {
  return AdaptiveMaxPool2dTwin::apply(input, output_size);
}

}  // namespace manualgrad
