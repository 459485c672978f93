// The Python module manualgrad._C: binds the twins' entry points (twins.h). The only file that
// includes pybind11 (through torch's Tensor casters; not <torch/extension.h>, which adds libtorch's
// whole C++ API: 31 s of parsing against 7 s).

#include <ATen/FunctionalTensorWrapper.h>
#include <ATen/autocast_mode.h>
#include <ATen/functorch/BatchedTensorImpl.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/pybind.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "twins.h"

namespace {

// manualgrad._ext.eligible's test of a call's arguments, in one call (its Python reference,
// _ext.eligible_arguments, spends about 1 µs per tensor argument on attribute reads). The dtypes
// are _ext's (_DTYPES, _INDEX_DTYPES, _LOW_DTYPES), handed over once by set_eligible_dtypes.
std::vector<at::ScalarType> floating_dtypes, index_dtypes, low_dtypes;

void set_eligible_dtypes(std::vector<at::ScalarType> floating, std::vector<at::ScalarType> index,
                         std::vector<at::ScalarType> low) {
  floating_dtypes = std::move(floating);
  index_dtypes = std::move(index);
  low_dtypes = std::move(low);
}

bool contains(const std::vector<at::ScalarType>& dtypes, at::ScalarType dtype) {
  return std::find(dtypes.begin(), dtypes.end(), dtype) != dtypes.end();
}

// torch._C._functorch.is_functorch_wrapped_tensor: batched by vmap, wrapped by a grad transform
// (live or dead), or functionalized at a transform level.
bool functorch_wrapped(const at::Tensor& tensor) {
  if (at::functorch::isBatchedTensor(tensor) ||
      tensor.key_set().has(c10::DispatchKey::FuncTorchGradWrapper)) {  // maybeGetTensorWrapper
    return true;
  }
  return at::functionalization::impl::isFunctionalTensor(tensor) &&
         at::functionalization::impl::unsafeGetFunctionalWrapper(tensor)->level() != -1;
}

// Autocast off on the CPU, and every tensor argument a torch.Tensor or nn.Parameter (no other
// subclass) on the CPU, strided, not wrapped by torch.func; the floating ones all of one of
// floating_dtypes (or of low_dtypes, for a low_precision twin; at least one), the others of
// index_dtypes.
bool eligible_arguments(const pybind11::tuple& args, bool low_precision) {
  if (at::autocast::is_autocast_enabled(at::kCPU)) {
    return false;
  }
  std::optional<at::ScalarType> dtype;
  for (const pybind11::handle arg : args) {
    PyObject* object = arg.ptr();
    // isinstance(arg, torch.Tensor), without PyObject_IsInstance's slow path on the many
    // arguments that are not tensors (None, numbers, strings)
    if (!PyObject_TypeCheck(object, reinterpret_cast<PyTypeObject*>(THPVariableClass))) {
      continue;
    }
    if (!THPVariable_CheckExact(object)) {
      return false;
    }
    const at::Tensor& tensor = THPVariable_Unpack(object);
    if (!tensor.is_cpu() || tensor.layout() != at::kStrided || functorch_wrapped(tensor)) {
      return false;
    }
    const at::ScalarType type = tensor.scalar_type();
    if (contains(index_dtypes, type)) {
      continue;
    }
    if (!dtype) {
      dtype = type;
    }
    if (type != *dtype ||
        !(contains(floating_dtypes, type) || (low_precision && contains(low_dtypes, type)))) {
      return false;
    }
  }
  return dtype.has_value();
}

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
  m.def("set_eligible_dtypes", &set_eligible_dtypes);
  m.def("eligible_arguments", &eligible_arguments, pybind11::arg("args"),
        pybind11::arg("low_precision") = false);
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
  m.def("prelu", &manualgrad::prelu);
  m.def("glu", &manualgrad::glu);
  m.def("linear", &manualgrad::linear);
  m.def("linear_relu", &manualgrad::linear_relu);
  m.def("linear_gelu", &manualgrad::linear_gelu);
  m.def("dropout", &manualgrad::dropout);
  m.def("alpha_dropout", &manualgrad::alpha_dropout);
  m.def("softmax", &manualgrad::softmax);
  m.def("log_softmax", &manualgrad::log_softmax);
  m.def("mse_loss", &manualgrad::mse_loss);
  m.def("l1_loss", &manualgrad::l1_loss);
  m.def("huber_loss", &manualgrad::huber_loss);
  m.def("cross_entropy", &manualgrad::cross_entropy);
  m.def("nll_loss", &manualgrad::nll_loss);
  m.def("binary_cross_entropy_with_logits", &manualgrad::binary_cross_entropy_with_logits);
  m.def("cross_entropy_probabilities", &manualgrad::cross_entropy_probabilities);
  m.def("hinge_loss", &manualgrad::hinge_loss);
  m.def("multi_margin_loss", &manualgrad::multi_margin_loss);
  m.def("embedding", &manualgrad::embedding);
  m.def("add", &manualgrad::add);
  m.def("sub", &manualgrad::sub);
  m.def("mul", &manualgrad::mul);
  m.def("div", &manualgrad::div);
  m.def("pow", &manualgrad::pow);
  m.def("neg", &manualgrad::neg);
  m.def("rsqrt", &manualgrad::rsqrt);
  m.def("sum", &manualgrad::sum);
  m.def("mean", &manualgrad::mean);
  m.def("matmul", &manualgrad::matmul);
  m.def("addmm", &manualgrad::addmm);
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
  m.def("attention", as_tuple(&manualgrad::attention));
}
