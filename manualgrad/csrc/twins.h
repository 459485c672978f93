// C++ twins of manualgrad's hot Functions: the eager path of Function.apply (see
// manualgrad/_ext.py, whose _TWINS maps each Python Function to its entry point here). Each twin
// is the same derivation as the Python Function named in its comment, whose docstring holds it;
// the Python Function stays the reference and the path under torch.func and torch.compile.
//
// One file per family (activations.cpp, linear.cpp, softmax.cpp, ...), each a
// TwinFunction (twin_function.h) per twin and the entry points declared below; module.cpp binds them.
// To add a twin: its Function and entry point in the family's file, its declaration here, one
// m.def in module.cpp, one line in _ext._TWINS.

#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace manualgrad {

using at::Tensor;

// activations.cpp
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double slope);
Tensor gelu(const Tensor& x, std::string approximate);
Tensor silu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor elu(const Tensor& x, double alpha, double scale, double input_scale);
Tensor hardtanh(const Tensor& x, double min_val, double max_val);
Tensor hardsigmoid(const Tensor& x);
Tensor hardswish(const Tensor& x);
Tensor softplus(const Tensor& x, double beta, double threshold);
Tensor mish(const Tensor& x);
Tensor logsigmoid(const Tensor& x);
Tensor prelu(const Tensor& input, const Tensor& weight);
Tensor glu(const Tensor& input, int64_t dim);

// linear.cpp (linear, and fused.LinearReLUFunction, LinearGELUFunction)
Tensor linear(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias);
Tensor linear_relu(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias);
Tensor linear_gelu(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias,
                   std::string approximate);

// dropout.cpp (DropoutFunction, AlphaDropoutFunction: the keep-mask drawn by the Python wrapper)
Tensor dropout(const Tensor& input, const Tensor& mask, double p);
Tensor alpha_dropout(const Tensor& input, const Tensor& mask, double p);

// softmax.cpp
Tensor softmax(const Tensor& input, int64_t dim);
Tensor log_softmax(const Tensor& input, int64_t dim);

// normalization.cpp: each returns the Python Function's outputs (y and its statistics)
std::vector<Tensor> layer_norm(const Tensor& input, const std::optional<Tensor>& weight,
                               const std::optional<Tensor>& bias, int64_t dims, double eps);
std::vector<Tensor> rms_norm(const Tensor& input, const std::optional<Tensor>& weight,
                             int64_t dims, double eps);
std::vector<Tensor> add_norm(const Tensor& input, const Tensor& residual,
                             const std::optional<Tensor>& weight,
                             const std::optional<Tensor>& bias, int64_t dims, double eps,
                             std::string kind);
std::vector<Tensor> group_norm(const Tensor& input, const std::optional<Tensor>& weight,
                               const std::optional<Tensor>& bias, int64_t groups, double eps);
std::vector<Tensor> batch_norm(const Tensor& input, const std::optional<Tensor>& weight,
                               const std::optional<Tensor>& bias,
                               const std::optional<Tensor>& running_mean,
                               const std::optional<Tensor>& running_var, bool training,
                               double momentum, double eps);

// losses.cpp (all but nll and bce return (L, hidden output))
std::tuple<Tensor, Tensor> mse_loss(const Tensor& input, const Tensor& target,
                                    const std::optional<Tensor>& weight, std::string reduction);
std::tuple<Tensor, Tensor> l1_loss(const Tensor& input, const Tensor& target,
                                   const std::optional<Tensor>& weight, std::string reduction);
std::tuple<Tensor, Tensor> huber_loss(const Tensor& input, const Tensor& target,
                                      const std::optional<Tensor>& weight, std::string reduction,
                                      double delta);
std::tuple<Tensor, Tensor> cross_entropy(const Tensor& input, const Tensor& target,
                                         const std::optional<Tensor>& weight,
                                         std::string reduction, int64_t ignore_index,
                                         double label_smoothing);
Tensor nll_loss(const Tensor& input, const Tensor& target, const std::optional<Tensor>& weight,
                std::string reduction, int64_t ignore_index);
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const std::optional<Tensor>& weight,
                                        const std::optional<Tensor>& pos_weight,
                                        std::string reduction);
std::tuple<Tensor, Tensor> cross_entropy_probabilities(const Tensor& input, const Tensor& target,
                                                       const std::optional<Tensor>& weight,
                                                       std::string reduction,
                                                       double label_smoothing);
std::tuple<Tensor, Tensor> hinge_loss(const Tensor& input, const Tensor& target, double margin,
                                      std::string reduction);
std::tuple<Tensor, Tensor> multi_margin_loss(const Tensor& input, const Tensor& target, int64_t p,
                                             double margin, const std::optional<Tensor>& weight,
                                             std::string reduction);

// embedding.cpp
Tensor embedding(const Tensor& input, const Tensor& weight, int64_t padding_idx,
                 bool scale_grad_by_freq, bool sparse);

// arithmetic.cpp. A Number: a Python number (pybind11 cannot load an at::Scalar; as_scalar in
// common.h makes it one); a TensorOrNumber: a tensor or a number, as the Python Functions take.
using Number = std::variant<bool, int64_t, double, c10::complex<double>>;
using TensorOrNumber = std::variant<Tensor, Number>;
Tensor add(const TensorOrNumber& input, const TensorOrNumber& other, const Number& alpha);
Tensor sub(const TensorOrNumber& input, const TensorOrNumber& other, const Number& alpha);
Tensor mul(const TensorOrNumber& input, const TensorOrNumber& other);
Tensor div(const TensorOrNumber& input, const TensorOrNumber& other,
           const std::optional<std::string>& rounding_mode);
Tensor pow(const TensorOrNumber& input, const TensorOrNumber& exponent);
Tensor neg(const Tensor& input);
Tensor rsqrt(const Tensor& input);

// reductions.cpp (dim: None, an int or a sequence of them, as reductions.Dims)
using Dims = std::optional<std::variant<int64_t, std::vector<int64_t>>>;
Tensor sum(const Tensor& input, const Dims& dim, bool keepdim);
Tensor mean(const Tensor& input, const Dims& dim, bool keepdim);

// products.cpp (MatmulFunction, AddmmFunction: addmm and baddbmm)
Tensor matmul(const Tensor& input, const Tensor& other);
Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, const Number& beta,
             const Number& alpha);

// convolution.cpp (conv.ConvolutionFunction, conv_transpose.ConvTransposeFunction)
Tensor convolution(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias,
                   std::vector<int64_t> stride, std::vector<int64_t> padding,
                   std::vector<int64_t> dilation, int64_t groups, std::vector<int64_t> extra);
Tensor conv_transpose(const Tensor& input, const Tensor& weight,
                      const std::optional<Tensor>& bias, std::vector<int64_t> stride,
                      std::vector<int64_t> padding, std::vector<int64_t> output_padding,
                      int64_t groups, std::vector<int64_t> dilation);

// pooling.cpp; PoolWindow: the fields of pooling._Window (module.cpp reads them)
struct PoolWindow {
  std::vector<int64_t> kernel, stride, padding, dilation, output, overhang;
};
std::vector<Tensor> max_pool2d(const Tensor& input, const PoolWindow& window);
Tensor avg_pool2d(const Tensor& input, const PoolWindow& window,
                  std::vector<std::vector<int64_t>> divisors);
Tensor adaptive_avg_pool2d(const Tensor& input, std::vector<int64_t> output_size);
std::vector<Tensor> adaptive_max_pool2d(const Tensor& input, std::vector<int64_t> output_size);

// attention.cpp (AttentionFunction: (O, ℓ) or (O, ℓ, A); blocks = (heads, rows) per block)
std::vector<Tensor> attention(const Tensor& query, const Tensor& key, const Tensor& value,
                              const std::optional<Tensor>& attn_mask, double scale,
                              bool is_causal, double dropout_p, int64_t seed,
                              std::tuple<int64_t, int64_t> blocks, bool need_weights);

}  // namespace manualgrad
