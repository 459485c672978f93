// The Python module manualgrad._C: binds the twins' entry points (twins.h). The only file that
// includes pybind11 (through torch's Tensor casters; not <torch/extension.h>, which adds libtorch's
// whole C++ API: 31 s of parsing against 7 s).

#include <torch/csrc/utils/pybind.h>

#include "twins.h"

namespace {

// A twin of several outputs (a std::vector) bound to return them as a tuple, as
// torch.autograd.Function.apply does (torch.func's rules for an autograd.Function need one).
template <typename... Args>
auto as_tuple(std::vector<at::Tensor> (*twin)(Args...)) {
  return [twin](Args... args) { return pybind11::tuple(pybind11::cast(twin(args...))); };
}

}  // namespace

// A pooling._Window argument read into a PoolWindow (the pooling twins).
namespace pybind11::detail {
template <>
struct type_caster<manualgrad::PoolWindow> {
  PYBIND11_TYPE_CASTER(manualgrad::PoolWindow, const_name("_Window"));
  bool load(handle window, bool) {
    auto field = [&](const char* name) { return window.attr(name).cast<std::vector<int64_t>>(); };
    value = {field("kernel"),   field("stride"), field("padding"),
             field("dilation"), field("output"), field("overhang")};
    return true;
  }
};
}  // namespace pybind11::detail

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "C++ twins of manualgrad's hot Functions (the eager path; see manualgrad/_ext.py)";
  m.def("relu", &manualgrad::relu);
  m.def("leaky_relu", &manualgrad::leaky_relu);
  m.def("gelu", &manualgrad::gelu);
  m.def("silu", &manualgrad::silu);
  m.def("sigmoid", &manualgrad::sigmoid);
  m.def("tanh", &manualgrad::tanh);
  m.def("elu", &manualgrad::elu);
  m.def("hardtanh", &manualgrad::hardtanh);
  m.def("hardsigmoid", &manualgrad::hardsigmoid);
  m.def("hardswish", &manualgrad::hardswish);
  m.def("softplus", &manualgrad::softplus);
  m.def("mish", &manualgrad::mish);
  m.def("logsigmoid", &manualgrad::logsigmoid);
  m.def("linear", &manualgrad::linear);
  m.def("linear_relu", &manualgrad::linear_relu);
  m.def("softmax", &manualgrad::softmax);
  m.def("log_softmax", &manualgrad::log_softmax);
  m.def("mse_loss", &manualgrad::mse_loss);
  m.def("l1_loss", &manualgrad::l1_loss);
  m.def("huber_loss", &manualgrad::huber_loss);
  m.def("cross_entropy", &manualgrad::cross_entropy);
  m.def("nll_loss", &manualgrad::nll_loss);
  m.def("binary_cross_entropy_with_logits", &manualgrad::binary_cross_entropy_with_logits);
  m.def("embedding", &manualgrad::embedding);
  m.def("layer_norm", as_tuple(&manualgrad::layer_norm));
  m.def("rms_norm", as_tuple(&manualgrad::rms_norm));
  m.def("add_norm", as_tuple(&manualgrad::add_norm));
  m.def("group_norm", as_tuple(&manualgrad::group_norm));
  m.def("batch_norm", as_tuple(&manualgrad::batch_norm));
  m.def("convolution", &manualgrad::convolution);
  m.def("conv_transpose", &manualgrad::conv_transpose);
  m.def("max_pool2d", as_tuple(&manualgrad::max_pool2d));
  m.def("avg_pool2d", &manualgrad::avg_pool2d);
  m.def("adaptive_avg_pool2d", &manualgrad::adaptive_avg_pool2d);
  m.def("adaptive_max_pool2d", as_tuple(&manualgrad::adaptive_max_pool2d));
}
