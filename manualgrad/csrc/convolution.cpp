// C++ twins of manualgrad.functional.conv.ConvolutionFunction and
// manualgrad.functional.conv_transpose.ConvTransposeFunction (see twins.h): the gradient of a
// convolution is a convolution. The kernels (at::convolution, forward and transposed) are the
// primitives, as torch.convolution is in the Python Functions; autograd differentiates them
// again, so the backward is differentiable as it stands (double backward needs no other path).

#include "common.h"

#include <c10/util/generic_math.h>
#include "twins.h"

namespace manualgrad {

namespace {

using Ints = std::vector<int64_t>;

// conv._pad_after: ``extra[i]`` zeros appended to spatial dim i (the input itself when none).
Tensor pad_after(const Tensor& input, const Ints& extra) {
  if (std::all_of(extra.begin(), extra.end(), [](int64_t after) { return after == 0; })) {
    return input;
  }
  Ints pads;  // torch.nn.functional.pad's order: the last dim first, (before, after) each
  for (auto after = extra.rbegin(); after != extra.rend(); ++after) {
    pads.push_back(0);
    pads.push_back(*after);
  }
  return at::constant_pad_nd(input, pads, 0);
}

Ints zeros_like(const Ints& stride) {
  return Ints(stride.size(), 0);
}

// conv._save_operands: x only if W needs a gradient, W only if x needs one, both shapes and
// the layer's options.
void save_operands(TwinContext* ctx, const Tensor& input, const Tensor& weight,
                   const std::optional<Tensor>& bias, const Ints& stride, const Ints& padding,
                   const Ints& dilation, int64_t groups) {
  ctx->save_for_backward({weight.requires_grad() ? input : Tensor(),
                          input.requires_grad() ? weight : Tensor()});
  ctx->saved_data["input_shape"] = input.sizes().vec();
  ctx->saved_data["weight_shape"] = weight.sizes().vec();
  ctx->saved_data["bias"] = bias.has_value();  // an absent optional tensor has no edge
  ctx->saved_data["stride"] = stride;
  ctx->saved_data["padding"] = padding;
  ctx->saved_data["dilation"] = dilation;
  ctx->saved_data["groups"] = groups;
}

Ints saved_ints(TwinContext* ctx, const char* key) {
  return ctx->saved_data[key].toIntVector();
}

// conv._bias_grad: dL/db = Σ over the batch and spatial dims of dL/dy.
Tensor bias_grad(const Tensor& grad_output) {
  Ints dims{0};
  for (int64_t d = 2; d < grad_output.dim(); ++d) {
    dims.push_back(d);
  }
  return grad_output.sum(dims);
}

// conv._conv_input_grad: dL/dx, the transposed convolution of dL/dy sized to the (extra-padded)
// input by output_padding, then cropped; an empty input has an empty gradient.
Tensor conv_input_grad(const Tensor& grad_output, const Tensor& weight, const Ints& input_shape,
                       const Ints& stride, const Ints& padding, const Ints& dilation,
                       int64_t groups, const Ints& extra) {
  if (c10::multiply_integers(input_shape) == 0) {
    return at::zeros(input_shape, grad_output.options());
  }
  Ints output_padding;
  for (size_t i = 0; i < stride.size(); ++i) {
    int64_t size = input_shape[i + 2];
    int64_t reached = (grad_output.size(i + 2) - 1) * stride[i] - 2 * padding[i] +
                      dilation[i] * (weight.size(i + 2) - 1) + 1;
    output_padding.push_back(size + extra[i] - reached);
  }
  Tensor grad = at::convolution(grad_output, weight, std::nullopt, stride, padding, dilation, true,
                                output_padding, groups);
  for (size_t i = 0; i < extra.size(); ++i) {
    if (extra[i] != 0) {
      grad = grad.narrow(i + 2, 0, input_shape[i + 2]);
    }
  }
  return grad;
}

// conv.PRODUCT_OUTPUTS and PRODUCT_COLUMNS: output pixels, values of unfold(x), up to which a
// 2-d dL/dW is a matrix product.
constexpr int64_t kProductOutputs = 32;
constexpr int64_t kProductColumns = 1 << 16;

// conv._weight_grad_product: dL/dW[o, (c, j)] = Σ_{n, i} G_y[n, o, i] · unfold(x)[n, (c, j), i],
// one matrix product per group over the N·L (sample, output pixel) pairs.
Tensor weight_grad_product(const Tensor& grad_output, const Tensor& input, const Ints& kernel,
                           const Ints& stride, const Ints& padding, const Ints& dilation,
                           int64_t groups) {
  int64_t out_channels = grad_output.size(1);
  Tensor columns = at::im2col(input, kernel, dilation, padding, stride);  // (N, C_in · k, L)
  int64_t rows = columns.size(1) / groups;
  columns = columns.unflatten(1, {groups, rows}).permute({1, 2, 0, 3}).reshape({groups, rows, -1});
  Tensor grads = grad_output.flatten(2)
                     .unflatten(1, {groups, out_channels / groups})
                     .permute({1, 2, 0, 3})
                     .reshape({groups, out_channels / groups, -1});
  Ints shape{out_channels, -1};
  shape.insert(shape.end(), kernel.begin(), kernel.end());
  return grads.matmul(columns.transpose(1, 2)).reshape(shape);
}

// conv.TAP_KERNEL: kernel width up to which a 1-d, one-group dL/dW is one product per tap.
constexpr int64_t kTapKernel = 32;

// conv._weight_grad_taps: dL/dW[:, :, j] = Σ_n Σ_i G_y[n, :, i] · x[n, :, s·i + d·j − p]ᵀ, one
// batched matrix product per kernel tap j over the outputs whose cell lies inside x; with
// zeros_outside (a float64 transposed convolution's dL/dW: torch's float64 kernel multiplies the
// padded dL/dy's zeros by x, its float32 one does not) plus Σ_n Σ_i 0 · G_y[n, :, i] over the
// outputs whose cell is padding, for every column.
Tensor weight_grad_taps(const Tensor& grad_output, const Tensor& input, int64_t kernel,
                        int64_t stride, int64_t padding, int64_t dilation, bool zeros_outside) {
  int64_t length = input.size(2), outputs = grad_output.size(2);
  std::vector<Tensor> phases;  // x's cells by residue mod s, dense (x itself for s = 1)
  if (stride == 1) {
    phases.push_back(input);
  } else {
    for (int64_t r = 0; r < stride; ++r) {
      phases.push_back(input.slice(2, r, length, stride).contiguous());
    }
  }
  std::vector<Tensor> taps;
  taps.reserve(kernel);
  for (int64_t j = 0; j < kernel; ++j) {
    int64_t offset = j * dilation - padding;
    int64_t first = std::max<int64_t>(0, -c10::div_floor_integer(offset, stride));
    int64_t end = std::max<int64_t>(
        first,
        std::min<int64_t>(outputs, c10::div_floor_integer(length - 1 - offset, stride) + 1));
    Tensor tap;
    if (end == first) {
      tap = at::zeros({grad_output.size(1), input.size(1)}, grad_output.options());
    } else {
      int64_t start = first * stride + offset;
      Tensor cells = phases[start % stride].slice(2, start / stride, start / stride + end - first);
      tap = at::bmm(grad_output.slice(2, first, end), cells.mT()).sum(0);
    }
    if (zeros_outside && (first > 0 || end < outputs)) {
      Tensor outside = at::cat({grad_output.slice(2, 0, first), grad_output.slice(2, end)}, 2);
      tap = tap + (outside * 0).sum({0, 2}).unsqueeze(1);
    }
    taps.push_back(tap);
  }
  return at::stack(taps, -1);
}

// conv._conv_weight_grad: dL/dW as one convolution, channels ↔ batch swapped (image c of the
// new batch holds channel c of every group, group by group, so that groups=G pairs each group
// with its own filters) and stride ↔ dilation swapped, cropped to the kernel size. Dense copies
// for the kernel, channels-last in 2-d unless an operand is batched (a torch.func transform or
// autograd's vmap over the incoming gradients: only the contiguous layout there). In 2-d with a
// 1×1 kernel, a small output or a small unfold(x) (and plain operands), the matrix product; with
// taps, in 1-d with one group and at most kTapKernel taps, one product per tap (zeros_outside:
// a transposed convolution's, see weight_grad_taps).
Tensor conv_weight_grad(const Tensor& grad_output, const Tensor& input, const Ints& weight_shape,
                        const Ints& stride, const Ints& padding, const Ints& dilation,
                        int64_t groups, bool taps = false, bool zeros_outside = false) {
  if (input.numel() == 0) {  // no samples (dL/dW = 0) or no input channels (W is empty)
    return at::zeros(weight_shape, grad_output.options());
  }
  Ints kernel(weight_shape.begin() + 2, weight_shape.end());
  if (taps && input.dim() == 3 && groups == 1 && kernel[0] <= kTapKernel && plain(grad_output) &&
      plain(input)) {
    return weight_grad_taps(grad_output, input, kernel[0], stride[0], padding[0], dilation[0],
                            zeros_outside);
  }
  int64_t outputs = c10::multiply_integers(grad_output.sizes().slice(2));
  int64_t cells = c10::multiply_integers(kernel);
  bool small = cells == 1 || outputs <= kProductOutputs ||
               input.size(0) * input.size(1) * cells * outputs <= kProductColumns;
  if (input.dim() == 4 && small && plain(grad_output) && plain(input)) {
    return weight_grad_product(grad_output, input, kernel, stride, padding, dilation, groups);
  }
  int64_t batch = input.size(0);
  int64_t channels = input.size(1);
  Ints spatial(input.sizes().begin() + 2, input.sizes().end());
  Ints grouped{batch, groups, channels / groups};
  grouped.insert(grouped.end(), spatial.begin(), spatial.end());
  Ints stacked{channels / groups, groups * batch};
  stacked.insert(stacked.end(), spatial.begin(), spatial.end());
  Tensor images = input.reshape(grouped).transpose(0, 2).reshape(stacked);
  Tensor filters = grad_output.transpose(0, 1);  // (C_out, N, *S_out)
  bool channels_last = images.dim() == 4 && plain(grad_output) && plain(input);
  auto layout = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  Tensor full = at::convolution(images.contiguous(layout), filters.contiguous(layout),
                                std::nullopt, dilation, padding, stride, false,
                                zeros_like(stride), groups);  // (C_g, C_out, *≥ kernel)
  for (size_t d = 2; d < weight_shape.size(); ++d) {
    full = full.narrow(d, 0, weight_shape[d]);
  }
  return full.transpose(0, 1);
}

}  // namespace

// Python: manualgrad.functional.conv.ConvolutionFunction.
struct ConvolutionTwin : public TwinFunction<ConvolutionTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& weight,
                        const std::optional<Tensor>& bias, Ints stride, Ints padding,
                        Ints dilation, int64_t groups, Ints extra) {
    save_operands(ctx, input, weight, bias, stride, padding, dilation, groups);
    ctx->saved_data["extra"] = extra;
    return at::convolution(pad_after(input, extra), weight, bias, stride, padding, dilation,
                           false, zeros_like(stride), groups);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor& grad = grads[0];
    Ints stride = saved_ints(ctx, "stride"), padding = saved_ints(ctx, "padding");
    Ints dilation = saved_ints(ctx, "dilation"), extra = saved_ints(ctx, "extra");
    int64_t groups = ctx->saved_data["groups"].toInt();
    Tensor grad_input, grad_weight, grad_bias;
    if (ctx->needs_input_grad(0)) {
      grad_input = conv_input_grad(grad, saved[1], saved_ints(ctx, "input_shape"), stride,
                                   padding, dilation, groups, extra);
    }
    if (ctx->needs_input_grad(1)) {
      grad_weight = conv_weight_grad(grad, pad_after(saved[0], extra),
                                     saved_ints(ctx, "weight_shape"), stride, padding, dilation,
                                     groups, /*taps=*/true);
    }
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) {
      grad_bias = bias_grad(grad);
    }
    return {grad_input, grad_weight, grad_bias, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// Python: manualgrad.functional.conv_transpose.ConvTransposeFunction: dL/dx the forward
// convolution of dL/dy, dL/dW the convolution's weight gradient with dL/dy as the input and x
// as the output gradient.
struct ConvTransposeTwin : public TwinFunction<ConvTransposeTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& weight,
                        const std::optional<Tensor>& bias, Ints stride, Ints padding,
                        Ints output_padding, int64_t groups, Ints dilation) {
    save_operands(ctx, input, weight, bias, stride, padding, dilation, groups);
    return at::convolution(input, weight, bias, stride, padding, dilation, true, output_padding,
                           groups);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor& grad = grads[0];
    Ints stride = saved_ints(ctx, "stride"), padding = saved_ints(ctx, "padding");
    Ints dilation = saved_ints(ctx, "dilation");
    int64_t groups = ctx->saved_data["groups"].toInt();
    Tensor grad_input, grad_weight, grad_bias;
    if (ctx->needs_input_grad(0)) {
      grad_input = at::convolution(grad, saved[1], std::nullopt, stride, padding, dilation, false,
                                   zeros_like(stride), groups);
    }
    if (ctx->needs_input_grad(1)) {
      grad_weight = conv_weight_grad(saved[0], grad, saved_ints(ctx, "weight_shape"), stride,
                                     padding, dilation, groups, /*taps=*/true,
                                     /*zeros_outside=*/grad.scalar_type() == at::kDouble);
    }
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) {
      grad_bias = bias_grad(grad);
    }
    return {grad_input, grad_weight, grad_bias, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

Tensor convolution(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias,
                   std::vector<int64_t> stride, std::vector<int64_t> padding,
                   std::vector<int64_t> dilation, int64_t groups, std::vector<int64_t> extra) {
  return ConvolutionTwin::apply(input, weight, bias, stride, padding, dilation, groups, extra);
}

Tensor conv_transpose(const Tensor& input, const Tensor& weight,
                      const std::optional<Tensor>& bias, std::vector<int64_t> stride,
                      std::vector<int64_t> padding, std::vector<int64_t> output_padding,
                      int64_t groups, std::vector<int64_t> dilation) {
  return ConvTransposeTwin::apply(input, weight, bias, stride, padding, output_padding, groups,
                                  dilation);
}

}  // namespace manualgrad
