// C++ twins of manualgrad.functional.arithmetic's hot element-wise ops (see twins.h): add, sub,
// mul, div, pow and the unary neg and rsqrt, each the derivation of the Python Function of the same
// name, whose docstring holds it.
//
// An operand may be a Python number: the entry point makes it the wrapped-number tensor torch's
// argument parser makes of one (so dtype promotion is torch.add's own), which needs no gradient
// and is never saved: a backward that needs its value reads the number from ctx->saved_data,
// as the Python Functions keep numbers on ctx. Gradients are summed back to each operand's shape
// (arithmetic.reduce_to); the forward values are ATen's kernels, as in the Python Functions.
// The tensors are real (float32/float64: _ext.eligible), but a number may be complex: the
// factors a gradient multiplies by are conjugated, as arithmetic.conj does (free when real).

#include "common.h"
#include "twins.h"

namespace manualgrad {

namespace {  // helpers (the twins themselves are named manualgrad::<Op>Twin, as the graph shows)

// A number as the 0-d wrapped-number tensor torch.add(t, 1.5) computes with.
Tensor wrapped(const at::Scalar& value) {
  Tensor number = c10::scalar_to_tensor(value);
  number.unsafeGetTensorImpl()->set_wrapped_number(true);
  return number;
}

Tensor as_tensor(const TensorOrNumber& operand) {
  const Tensor* tensor = std::get_if<Tensor>(&operand);
  return tensor != nullptr ? *tensor : wrapped(as_scalar(std::get<Number>(operand)));
}

bool is_number(const Tensor& operand) { return operand.unsafeGetTensorImpl()->is_wrapped_number(); }

// A wrapped number's value, read from its storage: not .item(), which dispatches, and under a
// Python dispatch mode (TorchDispatchMode) hands the mode the bare number instead of a tensor.
at::Scalar number_value(const Tensor& number) {
  return AT_DISPATCH_ALL_TYPES_AND_COMPLEX_AND(at::kBool, number.scalar_type(), "number_value", [&] {
    return at::Scalar(*number.const_data_ptr<scalar_t>());
  });
}

// arithmetic.reduce_to: grad summed over the dims its operand was broadcast along.
Tensor reduce_to(const Tensor& grad, const std::vector<int64_t>& shape) {
  return grad.sizes() == at::IntArrayRef(shape) ? grad : grad.sum_to_size(shape);
}

// Each operand's shape (arithmetic._keep), read back by shape_of.
void keep_shapes(TwinContext* ctx, const Tensor& input, const Tensor& other) {
  ctx->saved_data["input_shape"] = input.sizes().vec();
  ctx->saved_data["other_shape"] = other.sizes().vec();
}

std::vector<int64_t> shape_of(TwinContext* ctx, const char* name) {
  return ctx->saved_data[name].toIntVector();
}

// Save `operand` when `wanted`: a tensor through save_for_backward (slot `slot` of `saved`), a
// number as its value in saved_data[name] (arithmetic._keep: numbers go on ctx).
void keep(TwinContext* ctx, variable_list& saved, size_t slot, const Tensor& operand,
          bool wanted, const char* name) {
  if (!wanted) {
    return;
  }
  if (is_number(operand)) {
    ctx->saved_data[name] = number_value(operand);
  } else {
    saved[slot] = operand;
  }
}

// The kept operand back: the saved tensor, or the conjugated number as a wrapped-number tensor
// (the value `grad * conj(1.5)` multiplies by, as in the Python backward).
Tensor kept(TwinContext* ctx, const variable_list& saved, size_t slot, const char* name) {
  if (ctx->saved_data.count(name) != 0) {
    return wrapped(ctx->saved_data[name].toScalar().conj());
  }
  return saved[slot];
}

// arithmetic._scaled: grad · factor; grad itself for the factor 1, −grad for −1 (the same
// values without converting the number to a tensor of grad's dtype: sub's dL/do).
Tensor scaled(const Tensor& grad, const at::Scalar& factor) {
  if (factor.equal(1)) {
    return grad;
  }
  return factor.equal(-1) ? grad.neg() : grad * factor;
}

// Whether both gradients of a binary op may come from one pass over (grad, x, o): first order
// (grad mode off), and three plain, contiguous float32/float64 tensors of one dtype and one shape
// (nothing broadcast to sum back; a number operand is not saved as a tensor, so fails this).
bool one_pass(const Tensor& grad, const Tensor& input, const Tensor& other) {
  if (at::GradMode::is_enabled() || !input.defined() || !other.defined()) {
    return false;
  }
  for (const Tensor* t : {&grad, &input, &other}) {
    if (!fusable(*t) || !t->is_contiguous() || t->scalar_type() != grad.scalar_type() ||
        t->sizes() != grad.sizes()) {
      return false;
    }
  }
  return true;
}

// (first(g, x, o), second(g, x, o)) element-wise in one vectorised pass over the operands of
// one_pass (in parallel over large tensors): each formula the Python backward's ops in their
// order, so each value is theirs bit for bit, with grad, x and o each read once where the
// Python backward reads them once per gradient op.
template <typename First, typename Second>
std::pair<Tensor, Tensor> both_in_one_pass(const Tensor& grad, const Tensor& input,
                                           const Tensor& other, const First& first,
                                           const Second& second) {
  Tensor first_out = at::empty_like(grad), second_out = at::empty_like(grad);
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "manualgrad_both_in_one_pass", [&] {
    using V = Vec<scalar_t>;
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const scalar_t* x = input.const_data_ptr<scalar_t>();
    const scalar_t* o = other.const_data_ptr<scalar_t>();
    scalar_t* a = first_out.mutable_data_ptr<scalar_t>();
    scalar_t* b = second_out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, grad.numel(), at::internal::GRAIN_SIZE, [&](int64_t begin, int64_t end) {
      int64_t i = begin;
      for (; i + V::size() <= end; i += V::size()) {
        V gv = V::loadu(g + i), xv = V::loadu(x + i), ov = V::loadu(o + i);
        first(gv, xv, ov).store(a + i);
        second(gv, xv, ov).store(b + i);
      }
      for (; i < end; ++i) {
        a[i] = first(g[i], x[i], o[i]);
        b[i] = second(g[i], x[i], o[i]);
      }
    });
  });
  return {first_out, second_out};
}

}  // namespace

// Python: AddFunction (y = x + α·o) and SubFunction (y = x − α·o): dL/dx = Σ_b G,
// dL/do = ±α · Σ_b G. Nothing saved but the shapes.
template <bool Subtract>
struct AlphaTwin {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& other,
                        const at::Scalar& alpha) {
    keep_shapes(ctx, input, other);
    ctx->saved_data["alpha"] = (Subtract ? -alpha : alpha).conj();
    return Subtract ? at::sub(input, other, alpha) : at::add(input, other, alpha);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    const Tensor& grad = grads[0];
    Tensor grad_input, grad_other;
    if (ctx->needs_input_grad(0)) {
      grad_input = reduce_to(grad, shape_of(ctx, "input_shape"));
    }
    if (ctx->needs_input_grad(1)) {
      grad_other = reduce_to(scaled(grad, ctx->saved_data["alpha"].toScalar()),
                             shape_of(ctx, "other_shape"));
    }
    return {grad_input, grad_other, Tensor()};
  }
};
struct AddTwin : public AlphaTwin<false>, public TwinFunction<AddTwin> {};
struct SubTwin : public AlphaTwin<true>, public TwinFunction<SubTwin> {};

// Python: MulFunction (y = x · o): saves o if x needs a gradient, x if o does;
// dL/dx = Σ_b G · o,   dL/do = Σ_b G · x.
struct MulTwin : public TwinFunction<MulTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& other) {
    keep_shapes(ctx, input, other);
    variable_list saved(2);
    keep(ctx, saved, 0, input, other.requires_grad(), "input");
    keep(ctx, saved, 1, other, input.requires_grad(), "other");
    ctx->save_for_backward(saved);
    return at::mul(input, other);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    const Tensor& grad = grads[0];
    auto saved = ctx->get_saved_variables();
    if (ctx->needs_input_grad(0) && ctx->needs_input_grad(1) &&
        one_pass(grad, saved[0], saved[1])) {
      auto [grad_input, grad_other] = both_in_one_pass(
          grad, saved[0], saved[1], [](auto g, auto, auto o) { return g * o; },
          [](auto g, auto x, auto) { return g * x; });
      return {grad_input, grad_other};
    }
    Tensor grad_input, grad_other;
    if (ctx->needs_input_grad(0)) {
      grad_input = reduce_to(grad * kept(ctx, saved, 1, "other"), shape_of(ctx, "input_shape"));
    }
    if (ctx->needs_input_grad(1)) {
      grad_other = reduce_to(grad * kept(ctx, saved, 0, "input"), shape_of(ctx, "other_shape"));
    }
    return {grad_input, grad_other};
  }
};

// Python: DivFunction (y = x / o, or rounded with rounding_mode: gradients 0): saves o if
// either operand needs a gradient, x if o does;
// dL/dx = Σ_b G / o,   dL/do = −Σ_b G · x / o².
struct DivTwin : public TwinFunction<DivTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& other,
                        const std::optional<std::string>& rounding_mode) {
    keep_shapes(ctx, input, other);
    bool exact = !rounding_mode.has_value();
    ctx->saved_data["exact"] = exact;
    variable_list saved(2);
    keep(ctx, saved, 0, input, exact && other.requires_grad(), "input");
    keep(ctx, saved, 1, other, exact && (input.requires_grad() || other.requires_grad()), "other");
    ctx->save_for_backward(saved);
    std::optional<c10::string_view> mode;
    if (rounding_mode.has_value()) {
      mode = *rounding_mode;
    }
    return at::div(input, other, mode);
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    const Tensor& grad = grads[0];
    auto saved = ctx->get_saved_variables();
    bool exact = ctx->saved_data["exact"].toBool();
    if (exact && ctx->needs_input_grad(0) && ctx->needs_input_grad(1) &&
        one_pass(grad, saved[0], saved[1])) {
      auto [grad_input, grad_other] = both_in_one_pass(
          grad, saved[0], saved[1], [](auto g, auto, auto o) { return g / o; },
          [](auto g, auto x, auto o) { return -g * (x / o / o); });
      return {grad_input, grad_other, Tensor()};
    }
    Tensor grad_input, grad_other;
    if (ctx->needs_input_grad(0)) {
      Tensor full = exact ? grad / kept(ctx, saved, 1, "other") : at::zeros_like(grad);
      grad_input = reduce_to(full, shape_of(ctx, "input_shape"));
    }
    if (ctx->needs_input_grad(1)) {
      Tensor full = at::zeros_like(grad);
      if (exact) {
        Tensor other = kept(ctx, saved, 1, "other");
        full = -grad * (kept(ctx, saved, 0, "input") / other / other);
      }
      grad_other = reduce_to(full, shape_of(ctx, "other_shape"));
    }
    return {grad_input, grad_other, Tensor()};
  }
};

// Python: PowFunction (y = x^p, either a number): saves x when any operand needs a gradient, p,
// and y when p needs one;
// dL/dx = Σ_b G · p·x^{p−1} (0 where p = 0),
// dL/dp = Σ_b G · y · log x (0 where x = 0 and p ≥ 0), as arithmetic._pow_grad_input and
// _pow_grad_exponent.
struct PowTwin : public TwinFunction<PowTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& exponent) {
    keep_shapes(ctx, input, exponent);
    // torch.pow's overload for a number exponent or base (pow.Tensor_Scalar: x·x for p = 2),
    // not pow.Tensor_Tensor with a wrapped number: the Python Function's forward, bit for bit
    Tensor output = is_number(exponent) ? at::pow(input, number_value(exponent))
                    : is_number(input)  ? at::pow(number_value(input), exponent)
                                        : at::pow(input, exponent);
    variable_list saved(3);
    keep(ctx, saved, 0, input, input.requires_grad() || exponent.requires_grad(), "input");
    keep(ctx, saved, 1, exponent, true, "other");
    if (exponent.requires_grad()) {
      saved[2] = output;
    }
    ctx->save_for_backward(saved);
    return output;
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    const Tensor& grad = grads[0];
    auto saved = ctx->get_saved_variables();
    Tensor grad_input, grad_exponent;
    if (ctx->needs_input_grad(0)) {
      grad_input =
          reduce_to(pow_grad_input(ctx, grad, saved[0], saved[1]), shape_of(ctx, "input_shape"));
    }
    if (ctx->needs_input_grad(1)) {
      grad_exponent = reduce_to(pow_grad_exponent(ctx, grad, saved[0], saved[1], saved[2]),
                                shape_of(ctx, "other_shape"));
    }
    return {grad_input, grad_exponent};
  }

  // G · p·x^{p−1}, 0 where p = 0 (a tensor p: where; a number p = 0: zeros).
  static Tensor pow_grad_input(TwinContext* ctx, const Tensor& grad, const Tensor& input,
                               const Tensor& exponent) {
    if (exponent.defined()) {
      Tensor slope = exponent * input.pow(exponent - 1);
      return at::where(exponent == 0, 0, grad * slope.conj());
    }
    at::Scalar p = ctx->saved_data["other"].toScalar();
    if (p.equal(0)) {
      return at::zeros_like(grad);
    }
    // p = 2 or 3, first order: one pass of the same values (x.pow(1) is x, x.pow(2) is x·x in
    // ATen's pow kernel); else the composite ops
    bool square = p.equal(2), cube = p.equal(3);
    if ((square || cube) && !at::GradMode::is_enabled() && fusable(grad) && plain(input) &&
        grad.scalar_type() == input.scalar_type() && grad.sizes() == input.sizes()) {
      double factor = p.toDouble();
      return square ? fused(input, grad, [factor](auto x, auto g) {
        return g * (x * constant(x, factor));
      })
                    : fused(input, grad, [factor](auto x, auto g) {
                        return g * ((x * x) * constant(x, factor));
                      });
    }
    at::Scalar lower =
        p.isIntegral(false) ? at::Scalar(p.toLong() - 1) : at::Scalar(p.toDouble() - 1);
    return grad * (input.pow(lower) * p).conj();
  }

  // G · y · log x, 0 where x = 0 and p ≥ 0 (a number x: log x, −inf at 0, nan below).
  static Tensor pow_grad_exponent(TwinContext* ctx, const Tensor& grad, const Tensor& input,
                                  const Tensor& exponent, const Tensor& output) {
    if (input.defined()) {
      Tensor limit = (input == 0) & (exponent >= 0);
      return at::where(limit, 0, grad * (output * input.log()).conj());
    }
    double base = ctx->saved_data["input"].toScalar().toDouble();
    if (base == 0) {
      return at::where(exponent >= 0, 0, grad * (output * -INFINITY).conj());
    }
    return grad * (output * (base > 0 ? std::log(base) : NAN)).conj();
  }
};

// Python: arithmetic.NegFunction (y = −x): nothing saved; dL/dx = −dL/dy.
struct NegTwin : public TwinFunction<NegTwin> {
  static Tensor forward(TwinContext*, const Tensor& input) { return at::neg(input); }
  static variable_list backward(TwinContext*, variable_list grads) { return {-grads[0]}; }
};

// y³: y·y·y on scalars and vectors (as torch's pow kernel for the exponent 3), y.pow(3) on
// tensors (the Python backward's op, so a double backward differentiates the same one).
namespace {
template <typename T>
T cube(const T& y) {
  return y * y * y;
}
Tensor cube(const Tensor& y) { return y.pow(3); }
}  // namespace

// Python: arithmetic.RsqrtFunction (y = x^{−1/2}): saves y; dL/dx = −½ · dL/dy · y³, one pass
// when first order (the composite grad · (−0.5 · y³) otherwise, as in Python).
struct RsqrtTwin : public FromOutput<RsqrtTwin> {
  static Tensor value(const Tensor& input) { return at::rsqrt(input); }
  template <typename V>
  static auto derivative(const V& y) {
    return constant(y, -0.5) * cube(y);
  }
};

Tensor add(const TensorOrNumber& input, const TensorOrNumber& other, const Number& alpha) {
  return AddTwin::apply(as_tensor(input), as_tensor(other), as_scalar(alpha));
}
Tensor sub(const TensorOrNumber& input, const TensorOrNumber& other, const Number& alpha) {
  return SubTwin::apply(as_tensor(input), as_tensor(other), as_scalar(alpha));
}
Tensor mul(const TensorOrNumber& input, const TensorOrNumber& other) {
  return MulTwin::apply(as_tensor(input), as_tensor(other));
}
Tensor div(const TensorOrNumber& input, const TensorOrNumber& other,
           const std::optional<std::string>& rounding_mode) {
  return DivTwin::apply(as_tensor(input), as_tensor(other), rounding_mode);
}
Tensor pow(const TensorOrNumber& input, const TensorOrNumber& exponent) {
  return PowTwin::apply(as_tensor(input), as_tensor(exponent));
}
Tensor neg(const Tensor& input) { return NegTwin::apply(input); }
Tensor rsqrt(const Tensor& input) { return RsqrtTwin::apply(input); }

}  // namespace manualgrad
