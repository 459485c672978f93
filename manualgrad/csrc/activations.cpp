// C++ twins of manualgrad.functional.activations (see twins.h).

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "activations.h"
#include "common.h"
#include "twins.h"

#include <ATen/Parallel.h>

namespace manualgrad {

// ---- row kernels ---------------------------------------------------------------------------

template <typename T>
T load(const T* p, T) {
  return *p;
}
template <typename T>
Vec<T> load(const T* p, const Vec<T>&) {
  return Vec<T>::loadu(p);
}
template <typename T>
void store(T* p, T v) {
  *p = v;
}
template <typename T>
void store(T* p, const Vec<T>& v) {
  v.store(p);
}

// body(i, V()) over [0, n): V = Vec<T> at each of two whole vectors, then V = T one element at a
// time for the rest, as ATen's vectorized_loop: each element meets the arithmetic (the vector
// or the scalar formula) an ATen kernel over a row of n would give it.
template <typename T, typename Body>
void vector_loop(int64_t n, const Body& body) {
  constexpr int64_t width = Vec<T>::size();
  int64_t i = 0;
  for (; i + 2 * width <= n; i += 2 * width) {
    body(i, Vec<T>());
    body(i + width, Vec<T>());
  }
  for (; i < n; ++i) {
    body(i, T());
  }
}

// ---- element-wise twins -------------------------------------------------------------------

// Python: manualgrad.functional.activations.ReLUFunction.
struct ReLUTwin : public FromOutput<ReLUTwin> {
  static Tensor value(const Tensor& input) {
    return at::clamp_min(input, 0);
  }
  template <typename V>
  static auto derivative(const V& y) {  // 1 − 1[y ≤ 0]
    return constant(y, 1) - indicator_le(y, 0);
  }
};

// An activation with coefficients, the Python Function's number arguments (N of them): forward
// Self::value(input, c), save y when Self::from_output(c) (else z), dL/dz =
// Self::gradient(saved, dL/dy, c), by default chain(saved, dL/dy, Self::derivative(·, c)). A
// branch on the coefficients is taken once per call, outside the element loop (one fused
// instantiation per branch), never per element.
template <typename Self, size_t N>
struct Pointwise : public TwinFunction<Self> {
  using Coefficients = std::array<double, N>;
  template <typename... Numbers>
  static Tensor forward(TwinContext* ctx, const Tensor& input, Numbers... numbers) {
    static_assert(sizeof...(Numbers) == N, "one coefficient per number argument");
    Coefficients c{static_cast<double>(numbers)...};
    Tensor output = Self::value(input, c);
    ctx->saved_data["coefficients"] = std::vector<double>(c.begin(), c.end());
    ctx->save_for_backward({Self::from_output(c) ? output : input});
    return output;
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    Tensor saved = ctx->get_saved_variables()[0];
    std::vector<double> numbers = ctx->saved_data["coefficients"].toDoubleVector();
    Coefficients c;
    std::copy(numbers.begin(), numbers.end(), c.begin());
    variable_list result(N + 1);
    result[0] = Self::gradient(saved, grads[0], c);
    return result;
  }
  static Tensor gradient(const Tensor& saved, const Tensor& grad, const Coefficients& c) {
    return chain(saved, grad, [&c](auto x) { return Self::derivative(x, c); });
  }
};

// Python: manualgrad.functional.activations.LeakyReLUFunction.
struct LeakyReLUTwin : public Pointwise<LeakyReLUTwin, 1> {
  static bool from_output(const Coefficients& c) {
    return c[0] >= 0;
  }
  static Tensor value(const Tensor& input, const Coefficients& c) {
    double slope = c[0];
    if (slope == 0) {  // where(z > 0, z, 0·z): max(+inf, 0·inf = NaN) would be NaN
      return fused(input, [](auto z) { return where_positive(z, z, z * constant(z, 0)); });
    }
    if (slope <= 1) {
      return fused(input, [slope](auto z) { return maximum_of(z, z * constant(z, slope)); });
    }
    return fused(input, [slope](auto z) { return minimum_of(z, z * constant(z, slope)); });
  }
  template <typename V>
  static auto derivative(const V& z, const Coefficients& c) {
    // dL/dz = dL/dy · ((1 − 1[z > 0])·s + 1[z > 0])
    return (constant(z, 1) - indicator_gt(z, 0)) * constant(z, c[0]) + indicator_gt(z, 0);
  }
};

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kTanhBeta = 0.79788456080286535588;  // √(2/π)
constexpr double kTanhKappa = 0.044715;

#if defined(CPU_CAPABILITY_AVX512)
// ½·erf(|x|/√2) on 16 intervals of width w = 0.35 covering [0, 5.6] (beyond, ½ in float): on
// interval k a degree-5 polynomial in r = |x| − (k + ½)w, row d holding the coefficients of r^d
// for every k (least-squares fits at 200 Chebyshev nodes of each interval; |error| ≤ 4.5e-8
// evaluated in float, about one unit in the last place of ½).
alignas(64) constexpr float kHalfErf[6][16] = {
    {6.946018338e-02f, 2.002083957e-01f, 3.092130423e-01f, 3.897123933e-01f,
     4.423717856e-01f, 4.728853106e-01f, 4.885470271e-01f, 4.956675470e-01f,
     4.985350668e-01f, 4.995579123e-01f, 4.998810887e-01f, 4.999715090e-01f,
     4.999939203e-01f, 4.999988377e-01f, 4.999997914e-01f, 4.999999702e-01f},
    {3.928799927e-01f, 3.475832641e-01f, 2.720550001e-01f, 1.883881092e-01f,
     1.154115275e-01f, 6.255237758e-02f, 2.999420650e-02f, 1.272418071e-02f,
     4.775526468e-03f, 1.585665625e-03f, 4.658015678e-04f, 1.210568371e-04f,
     2.783407581e-05f, 5.661916475e-06f, 1.018941930e-06f, 1.622313732e-07f},
    {-3.437626362e-02f, -9.123896807e-02f, -1.190226823e-01f, -1.153873354e-01f,
     -9.088706225e-02f, -6.020739302e-02f, -3.411890939e-02f, -1.670064591e-02f,
     -7.103546523e-03f, -2.636066638e-03f, -8.558320696e-04f, -2.435854112e-04f,
     -6.086990834e-05f, -1.337050253e-05f, -2.583938567e-06f, -4.396646318e-07f},
    {-6.347380579e-02f, -4.196322709e-02f, -1.062763669e-02f, 1.571795717e-02f,
     2.847983129e-02f, 2.820724435e-02f, 2.087431215e-02f, 1.249241643e-02f,
     6.248554680e-03f, 2.657476580e-03f, 9.708323050e-04f, 3.066694771e-04f,
     8.414372860e-05f, 2.011962533e-05f, 4.202684067e-06f, 7.683477179e-07f},
    {8.442340419e-03f, 2.057160996e-02f, 2.204194479e-02f, 1.438430976e-02f,
     3.975741565e-03f, -3.476550803e-03f, -6.142377388e-03f, -5.400848575e-03f,
     -3.467675066e-03f, -1.778603066e-03f, -7.561280509e-04f, -2.715979354e-04f,
     -8.337803592e-05f, -2.204046905e-05f, -5.043033525e-06f, -1.002553631e-06f},
    {9.166716598e-03f, 4.105773289e-03f, -2.252311679e-03f, -5.845895968e-03f,
     -5.487121642e-03f, -2.870223951e-03f, -3.309712047e-04f, 9.566847584e-04f,
     1.118424931e-03f, 7.781966706e-04f, 4.067015252e-04f, 1.710617653e-04f,
     5.973652878e-05f, 1.761909516e-05f, 4.436159543e-06f, 9.603243143e-07f},
};
constexpr float kHalfErfTop = 5.6f;

// Φ(x) = ½ + ½·erf(x/√2) for a float vector from kHalfErf: each coefficient one lane permute
// of a table row by the interval index, no exponential, no division (GELU's fused passes).
inline Vec<float> normal_cdf(const Vec<float>& x) {
  constexpr float width = kHalfErfTop / 16;
  __m512 a = _mm512_min_ps(_mm512_abs_ps(x), _mm512_set1_ps(kHalfErfTop));  // NaN: the top
  __m512i k = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_mul_ps(a, _mm512_set1_ps(1 / width))),
                               _mm512_set1_epi32(15));
  __m512 middle = _mm512_fmadd_ps(_mm512_cvtepi32_ps(k), _mm512_set1_ps(width),
                                  _mm512_set1_ps(width / 2));
  __m512 r = _mm512_sub_ps(a, middle);
  __m512 q = _mm512_permutexvar_ps(k, _mm512_load_ps(kHalfErf[5]));
  for (int d = 4; d >= 0; --d) {
    q = _mm512_fmadd_ps(q, r, _mm512_permutexvar_ps(k, _mm512_load_ps(kHalfErf[d])));
  }
  __m512 sign = _mm512_and_ps(x, _mm512_set1_ps(-0.0f));
  return _mm512_add_ps(_mm512_set1_ps(0.5f), _mm512_xor_ps(q, sign));
}
#endif

// GELU's two forms (GELUFunction's gelu_value, gelu_derivative), each its own fused pass.
struct GELUErf {
  template <typename V>
  static auto value(const V& z) {  // ½z(1 + erf(z/√2))
    return (erf_of(z * constant(z, kSqrt1_2)) + constant(z, 1)) * z * constant(z, 0.5);
  }
  template <typename V>
  static auto derivative(const V& z) {  // Φ(z) + z·φ(z)
    auto density = exp_of(z * z * constant(z, -0.5));
    auto cdf = (erf_of(z * constant(z, kSqrt1_2)) + constant(z, 1)) * constant(z, 0.5);
    return cdf + constant(z, kInvSqrt2Pi) * z * density;
  }
#if defined(CPU_CAPABILITY_AVX512)
  static Vec<float> value(const Vec<float>& z) {  // z·Φ(z), Φ from normal_cdf
    return normal_cdf(z) * z;
  }
  static Vec<float> derivative(const Vec<float>& z) {
    auto density = (z * z * Vec<float>(-0.5f)).exp();
    return normal_cdf(z) + Vec<float>(static_cast<float>(kInvSqrt2Pi)) * z * density;
  }
#endif
};
struct GELUTanh {
  template <typename V>
  static auto inner(const V& z) {  // u = √(2/π)(z + κz³)
    return (z * z * z * constant(z, kTanhKappa) + z) * constant(z, kTanhBeta);
  }
  template <typename V>
  static auto value(const V& z) {  // ½z(1 + tanh(u))
    return (tanh_value(inner(z)) + constant(z, 1)) * z * constant(z, 0.5);
  }
  template <typename V>
  static auto derivative(const V& z) {  // ½(1 + t) + ½z(1 − t²)·√(2/π)(1 + 3κz²)
    auto t = tanh_value(inner(z));
    auto du = (z * z * constant(z, 3 * kTanhKappa) + constant(z, 1)) * constant(z, kTanhBeta);
    auto part = (constant(z, 1) - t * t) * du * z * constant(z, 0.5);
    return part + constant(z, 0.5) * t + constant(z, 0.5);
  }
  // On vectors, through s = ½(1 + tanh u) = 1/(1 + e^{−2u}) (one exponential and a division,
  // cheaper than tanh): y = z·s, and with ½(1 − t²) = 2s(1 − s) the derivative is
  // s + 2s(1 − s)·z·√(2/π)(1 + 3κz²).
  template <typename T>
  static Vec<T> half_one_plus_tanh(const Vec<T>& z) {
    return Vec<T>(T(1)) / (Vec<T>(T(1)) + (inner(z) * Vec<T>(T(-2))).exp());
  }
  template <typename T>
  static Vec<T> value(const Vec<T>& z) {
    return half_one_plus_tanh(z) * z;
  }
  template <typename T>
  static Vec<T> derivative(const Vec<T>& z) {
    auto s = half_one_plus_tanh(z);
    auto du = (z * z * Vec<T>(T(3 * kTanhKappa)) + Vec<T>(T(1))) * Vec<T>(T(kTanhBeta));
    return (Vec<T>(T(1)) - s) * s * Vec<T>(T(2)) * du * z + s;
  }
};

// GELU(z) by Form (GELUErf, GELUTanh) in one pass: over a contiguous z into out (z itself, or
// undefined: a new tensor), else into a new tensor of z's layout.
template <typename Form>
Tensor gelu_into(const Tensor& z, Tensor out) {
  if (!fusable(z) || !z.is_contiguous()) {
    return fused(z, [](auto x) { return Form::value(x); });
  }
  if (!out.defined()) {
    out = at::empty_like(z, at::MemoryFormat::Contiguous);
  }
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "manualgrad_gelu", [&] {
    const scalar_t* x = z.const_data_ptr<scalar_t>();
    scalar_t* y = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, z.numel(), 32768, [&](int64_t begin, int64_t end) {
      vector_loop<scalar_t>(end - begin, [&](int64_t i, auto v) {
        store(y + begin + i, Form::value(load(x + begin + i, v)));
      });
    });
  });
  return out;
}

Tensor gelu_(Tensor z, bool tanh) {
  return tanh ? gelu_into<GELUTanh>(z, z) : gelu_into<GELUErf>(z, z);
}

Tensor gelu_gradient(const Tensor& z, const Tensor& grad, bool tanh) {
  if (tanh) {
    return chain(z, grad, [](auto x) { return GELUTanh::derivative(x); });
  }
  return chain(z, grad, [](auto x) { return GELUErf::derivative(x); });
}

// Python: manualgrad.functional.activations.GELUFunction; c[0] is 1 for approximate='tanh'.
struct GELUTwin : public Pointwise<GELUTwin, 1> {
  static bool from_output(const Coefficients&) {
    return false;
  }
  static Tensor value(const Tensor& input, const Coefficients& c) {
    return c[0] != 0 ? gelu_into<GELUTanh>(input, Tensor()) : gelu_into<GELUErf>(input, Tensor());
  }
  static Tensor gradient(const Tensor& input, const Tensor& grad, const Coefficients& c) {
    return gelu_gradient(input, grad, c[0] != 0);
  }
};

// Python: manualgrad.functional.activations.ELUFunction (elu; selu and celu through it);
// c = (α, λ, s): alpha, scale, input_scale.
struct ELUTwin : public Pointwise<ELUTwin, 3> {
  static bool from_output(const Coefficients& c) {
    return c[0] >= 0;
  }
  static Tensor value(const Tensor& input, const Coefficients& c) {
    // λ·max(z, 0) + λα·(e^{s·min(z, 0)} − 1), the expm1 (a SLEEF call) first and the positive
    // branch after it, in the one expression: GCC's code for the formula written with the
    // positive branch as a named value ahead of the sum took 1.6× as long (~530 against ~330
    // µs at 256×1024; torch's elu ~300), whatever the order of the named values.
    double scale = c[1], input_scale = c[2], negative_scale = c[0] * c[1];
    return fused(input, [scale, input_scale, negative_scale](auto z) {
      auto negative = expm1_of(minimum_of(z, constant(z, 0)) * constant(z, input_scale));
      return maximum_of(z, constant(z, 0)) * constant(z, scale) +
          negative * constant(z, negative_scale);
    });
  }
  // The slope from the negative branch's λα·e^{sz}/s (`negative`): 1[x ≤ 0]·s·negative +
  // (1 − 1[x ≤ 0])·λ.
  template <typename V, typename W>
  static auto slope(const V& x, const W& negative, const Coefficients& c) {
    auto low = indicator_le(x, 0) * (negative * constant(x, c[2]));
    return low + (constant(x, 1) - indicator_le(x, 0)) * constant(x, c[1]);
  }
  static Tensor gradient(const Tensor& saved, const Tensor& grad, const Coefficients& c) {
    // dL/dz = dL/dy · (λ·1[z > 0] + 1[z ≤ 0]·s(y + λα)), s(y + λα) = λαs·e^{sz}
    double coefficient = c[0] * c[1];
    if (from_output(c)) {
      return chain(saved, grad, [&c, coefficient](auto y) {
        return slope(y, fmin_of(y, 0) + constant(y, coefficient), c);
      });
    }
    return chain(saved, grad, [&c, coefficient](auto z) {
      return slope(z, exp_of(fmin_of(z, 0) * constant(z, c[2])) * constant(z, coefficient), c);
    });
  }
};

// Python: manualgrad.functional.activations.HardtanhFunction (hardtanh, relu6); c = (m, M).
struct HardtanhTwin : public Pointwise<HardtanhTwin, 2> {
  static bool from_output(const Coefficients&) {
    return true;
  }
  static Tensor value(const Tensor& input, const Coefficients& c) {
    return at::clamp(input, c[0], c[1]);
  }
  template <typename V>
  static auto derivative(const V& y, const Coefficients& c) {  // (1 − 1[y ≤ m])(1 − 1[y ≥ M])
    return (constant(y, 1) - indicator_le(y, c[0])) * (constant(y, 1) - indicator_ge(y, c[1]));
  }
};

// clamp(z + 3, 0, 6), hardsigmoid's and hardswish's ramp.
template <typename V>
auto hard_ramp(const V& z) {
  return minimum_of(maximum_of(z + constant(z, 3), constant(z, 0)), constant(z, 6));
}

// Python: manualgrad.functional.activations.HardsigmoidFunction.
struct HardsigmoidTwin : public Pointwise<HardsigmoidTwin, 0> {
  static bool from_output(const Coefficients&) {
    return true;
  }
  static Tensor value(const Tensor& input, const Coefficients&) {
    return fused(input, [](auto z) { return hard_ramp(z) / constant(z, 6); });
  }
  template <typename V>
  static auto derivative(const V& y, const Coefficients&) {  // 1[y > 0]·1[y < 1]/6
    return indicator_gt(y, 0) * indicator_lt(y, 1) / constant(y, 6);
  }
};

// Python: manualgrad.functional.activations.HardswishFunction.
struct HardswishTwin : public Pointwise<HardswishTwin, 0> {
  static bool from_output(const Coefficients&) {
    return false;
  }
  static Tensor value(const Tensor& input, const Coefficients&) {
    return fused(input, [](auto z) { return hard_ramp(z) * z / constant(z, 6); });
  }
  template <typename V>
  static auto derivative(const V& z, const Coefficients&) {
    // 1[−3 < z < 3]·(c/3 + ½) + (1 − 1[z < 3]), c = fmax(fmin(z, 3), −3)
    auto inside = indicator_gt(z, -3) * indicator_lt(z, 3);
    auto above = constant(z, 1) - indicator_lt(z, 3);
    if constexpr (std::is_same_v<V, Tensor>) {  // the Python ops, differentiable again
      auto clamped = fmax_of(fmin_of(z, 3), -3);
      return inside * (clamped / constant(z, 3) + constant(z, 0.5)) + above;
    } else {
      // the same values with a select: inside, c = z and the sum's second term is 0; outside,
      // the first term is 0 (a ±0 that the sum's +0 or 1 absorbs) and NaN falls to 1 − 0 = 1
      return where_positive(inside, z / constant(z, 3) + constant(z, 0.5), above);
    }
  }
};

// Python: manualgrad.functional.activations.SoftplusFunction; c = (β, threshold).
struct SoftplusTwin : public Pointwise<SoftplusTwin, 2> {
  static bool from_output(const Coefficients&) {
    return false;
  }
  static Tensor value(const Tensor& input, const Coefficients& c) {
    return fused(input, [&c](auto z) {  // z where βz > threshold, else log(1 + e^{βz})/β
      auto scaled = z * constant(z, c[0]);
      return where_above(scaled, c[1], z, log1p_of(exp_of(scaled)) / constant(z, c[0]));
    });
  }
  template <typename V>
  static auto derivative(const V& z, const Coefficients& c) {
    // (1 − 1[βz > threshold])·σ(βz) + 1[βz > threshold]
    auto scaled = z * constant(z, c[0]);
    if constexpr (std::is_same_v<V, Tensor>) {  // the Python ops, differentiable again
      auto above = indicator_gt(scaled, c[1]);
      return (constant(z, 1) - above) * sigmoid_value(scaled) + above;
    } else {  // the same values as a select (σ is finite above the threshold; NaN is below)
      return where_above(scaled, c[1], constant(z, 1), sigmoid_value(scaled));
    }
  }
};

// Python: manualgrad.functional.activations.MishFunction.
struct MishTwin : public Pointwise<MishTwin, 0> {
  static bool from_output(const Coefficients&) {
    return false;
  }
  static Tensor value(const Tensor& input, const Coefficients&) {
    return fused(input, [](auto z) { return tanh_value(log1p_of(exp_of(z))) * z; });
  }
  template <typename V>
  static auto derivative(const V& z, const Coefficients&) {  // t + z·σ(z)·(1 − t²)
    auto t = tanh_value(log1p_of(exp_of(z)));
    return (constant(z, 1) - t * t) * sigmoid_value(z) * z + t;
  }
};

// Python: manualgrad.functional.activations.LogSigmoidFunction.
struct LogSigmoidTwin : public Pointwise<LogSigmoidTwin, 0> {
  static bool from_output(const Coefficients&) {
    return false;
  }
  static Tensor value(const Tensor& input, const Coefficients&) {
    return fused(input, [](auto z) {  // min(z, 0) − log(1 + e^{−|z|})
      return minimum_of(z, constant(z, 0)) - log1p_of(exp_of(-abs_of(z)));
    });
  }
  template <typename V>
  static auto derivative(const V& z, const Coefficients&) {  // σ(−z)
    return sigmoid_value(-z);
  }
};

// Python: manualgrad.functional.activations.SiLUFunction.
struct SiLUTwin : public TwinFunction<SiLUTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input) {
    ctx->save_for_backward({input});
    return fused(input, [](auto z) { return z * sigmoid_value(z); });
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    Tensor input = ctx->get_saved_variables()[0];
    // dL/dz = dL/dy · σ(z)·(1 + z(1 − σ(z)))
    return {chain(input, grads[0], [](auto z) {
      auto sigma = sigmoid_value(z);
      return ((constant(z, 1) - sigma) * z + constant(z, 1)) * sigma;
    })};
  }
};

// Python: manualgrad.functional.activations.SigmoidFunction.
struct SigmoidTwin : public FromOutput<SigmoidTwin> {
  static Tensor value(const Tensor& input) {
    return at::sigmoid(input);
  }
  template <typename V>
  static auto derivative(const V& y) {  // y(1 − y)
    return (constant(y, 1) - y) * y;
  }
};

// Python: manualgrad.functional.activations.TanhFunction.
struct TanhTwin : public FromOutput<TanhTwin> {
  static Tensor value(const Tensor& input) {
    return at::tanh(input);
  }
  template <typename V>
  static auto derivative(const V& y) {  // 1 − y²
    return constant(y, 1) - y * y;
  }
};

// ---- prelu, glu -----------------------------------------------------------------------------

// PReLUFunction's formulas: y = max(z, 0) + a·min(z, 0) (addcmul), the slope
// (1 − 1[z > 0])·a + 1[z > 0] (slope_above) and dL/da's summand min(z, 0)·dL/dy.
template <typename V, typename W>
auto prelu_value(const V& z, const W& a) {
  return maximum_of(z, constant(z, 0)) + a * minimum_of(z, constant(z, 0));
}
template <typename V, typename W>
auto prelu_slope(const V& z, const W& a) {
  return (constant(z, 1) - indicator_gt(z, 0)) * a + indicator_gt(z, 0);
}

// Python: manualgrad.functional.activations.PReLUFunction (weight a shaped to broadcast: one
// element, or one per channel at dim 1). Saves z, and a if dL/dz is needed; dL/dz = dL/dy ·
// slope, dL/da = Σ_{broadcast dims} dL/dy · min(z, 0) (sum_to_size over the summands, as the
// Python Function sums them). First order over a contiguous z and dL/dy: both gradients in one
// pass over rows (a per-channel a: one a per row of an (N·C, H·W...) view, or a row of a's along
// an (N, C) input); else the Python Function's composite ops.
struct PReLUTwin : public TwinFunction<PReLUTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, const Tensor& weight) {
    ctx->saved_data["weight_shape"] = weight.sizes().vec();
    ctx->save_for_backward({input, input.requires_grad() ? weight : Tensor()});
    if (fusable(input) && fusable(weight)) {
      return fused(input, weight, [](auto z, auto a) { return prelu_value(z, a); });
    }
    return at::addcmul(input.clamp_min(0), weight, input.clamp_max(0));
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor& input = saved[0];
    const Tensor& weight = saved[1];
    const Tensor& grad = grads[0];
    auto shape = ctx->saved_data["weight_shape"].toIntVector();
    bool needs_input = ctx->needs_input_grad(0);
    bool needs_weight = ctx->needs_input_grad(1);
    Tensor grad_input, grad_weight;
    if (!at::GradMode::is_enabled() && fusable(grad) && plain(input) && input.is_contiguous() &&
        grad.is_contiguous() && input.sizes() == grad.sizes() &&
        grad.scalar_type() == input.scalar_type() &&
        (!needs_input || (plain(weight) && weight.is_contiguous()))) {
      if (needs_input) {
        grad_input = at::empty_like(input);
      }
      if (needs_weight) {
        grad_weight = at::empty_like(input);
      }
      int64_t channels = c10::multiply_integers(shape);
      gradients(input, needs_input ? weight : Tensor(), grad, grad_input, grad_weight, channels);
    } else {
      if (needs_input) {
        grad_input = times(prelu_slope(input, weight), grad);
      }
      if (needs_weight) {
        grad_weight = times(input.clamp_max(0), grad);
      }
    }
    if (needs_weight) {
      grad_weight = grad_weight.sum_to_size(shape);
    }
    return {grad_input, grad_weight};
  }
  // dL/dz and dL/da's summands into grad_input and summands (each where defined): one pass.
  static void gradients(const Tensor& input, const Tensor& weight, const Tensor& grad,
                        const Tensor& grad_input, const Tensor& summands, int64_t channels) {
    int64_t numel = input.numel();
    if (numel == 0) {
      return;
    }
    // a row of a's (an (N, C) input: rows N, width C), or one a per row (N·C rows, or one row)
    bool along = channels > 1 && input.dim() == 2;
    int64_t width = along ? channels : (channels > 1 ? numel / (input.size(0) * channels) : numel);
    int64_t rows = numel / width;
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_prelu_grads", [&] {
      const scalar_t* z = input.const_data_ptr<scalar_t>();
      const scalar_t* w = weight.defined() ? weight.const_data_ptr<scalar_t>() : nullptr;
      const scalar_t* g = grad.const_data_ptr<scalar_t>();
      scalar_t* dz = grad_input.defined() ? grad_input.mutable_data_ptr<scalar_t>() : nullptr;
      scalar_t* dw = summands.defined() ? summands.mutable_data_ptr<scalar_t>() : nullptr;
      parallel_rows(rows, width, [&](int64_t r) {
        int64_t offset = r * width;
        scalar_t a = w == nullptr || along ? scalar_t(0) : w[r % channels];
        vector_loop<scalar_t>(width, [&](int64_t i, auto v) {
          using V = decltype(v);
          V zv = load(z + offset + i, v);
          V gv = load(g + offset + i, v);
          if (dz != nullptr) {
            V av = along ? load(w + i, v) : V(a);
            store(dz + offset + i, prelu_slope(zv, av) * gv);
          }
          if (dw != nullptr) {
            store(dw + offset + i, minimum_of(zv, constant(zv, 0)) * gv);
          }
        });
      });
    });
  }
};

// Python: manualgrad.functional.activations.GLUFunction: a, b the halves of z along dim,
// y = a·σ(b), saves z; dL/da = dL/dy · σ(b), dL/db = dL/dy · (1 − σ(b))σ(b)·a. Over a
// contiguous z, seen as rows [a | b] of 2L (L the half's size times the trailing dims'): one
// pass each way, both halves of dL/dz written in place; else composite (the Python Function's
// ops, the sigmoid twin's entry point under grad mode).
struct GLUTwin : public TwinFunction<GLUTwin> {
  static Tensor forward(TwinContext* ctx, const Tensor& input, int64_t dim) {
    dim = c10::maybe_wrap_dim(dim, input.dim());
    ctx->saved_data["dim"] = dim;
    ctx->save_for_backward({input});
    if (!fusable(input) || !input.is_contiguous()) {
      auto halves = input.chunk(2, dim);
      return at::sigmoid(halves[1]).mul_(halves[0]);
    }
    auto sizes = input.sizes().vec();
    sizes[dim] /= 2;
    Tensor output = at::empty(sizes, input.options());
    int64_t half = output.numel() == 0 ? 0 : input.stride(dim) * sizes[dim];
    int64_t rows = half == 0 ? 0 : output.numel() / half;
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_glu", [&] {
      const scalar_t* z = input.const_data_ptr<scalar_t>();
      scalar_t* y = output.mutable_data_ptr<scalar_t>();
      parallel_rows(rows, half, [&](int64_t r) {
        const scalar_t* a = z + 2 * r * half;
        vector_loop<scalar_t>(half, [&](int64_t i, auto v) {
          store(y + r * half + i, sigmoid_value(load(a + half + i, v)) * load(a + i, v));
        });
      });
    });
    return output;
  }
  static variable_list backward(TwinContext* ctx, variable_list grads) {
    Tensor input = ctx->get_saved_variables()[0];
    int64_t dim = ctx->saved_data["dim"].toInt();
    const Tensor& grad = grads[0];
    if (at::GradMode::is_enabled() || !fusable(grad) || !plain(input) ||
        !input.is_contiguous() || !grad.is_contiguous() ||
        grad.scalar_type() != input.scalar_type()) {
      auto halves = input.chunk(2, dim);
      Tensor sigma = sigmoid_value(halves[1]);
      Tensor grad_a = sigma * grad;
      Tensor grad_b = times((constant(sigma, 1) - sigma) * sigma, halves[0]);
      return {at::cat({grad_a, times(grad_b, grad)}, dim), Tensor()};
    }
    Tensor grad_input = at::empty_like(input);
    int64_t half = grad.numel() == 0 ? 0 : input.stride(dim) * grad.size(dim);
    int64_t rows = half == 0 ? 0 : grad.numel() / half;
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "manualgrad_glu_grad", [&] {
      const scalar_t* z = input.const_data_ptr<scalar_t>();
      const scalar_t* g = grad.const_data_ptr<scalar_t>();
      scalar_t* dz = grad_input.mutable_data_ptr<scalar_t>();
      parallel_rows(rows, half, [&](int64_t r) {
        int64_t row = 2 * r * half;
        vector_loop<scalar_t>(half, [&](int64_t i, auto v) {
          auto a = load(z + row + i, v);
          auto sigma = sigmoid_value(load(z + row + half + i, v));
          auto gv = load(g + r * half + i, v);
          store(dz + row + i, sigma * gv);
          store(dz + row + half + i, (constant(sigma, 1) - sigma) * sigma * a * gv);
        });
      });
    });
    return {grad_input, Tensor()};
  }
};

Tensor relu(const Tensor& x) {
  return ReLUTwin::apply(x);
}
Tensor leaky_relu(const Tensor& x, double slope) {
  return LeakyReLUTwin::apply(x, slope);
}
Tensor gelu(const Tensor& x, std::string approximate) {
  return GELUTwin::apply(x, approximate == "tanh" ? 1.0 : 0.0);
}
Tensor silu(const Tensor& x) {
  return SiLUTwin::apply(x);
}
Tensor sigmoid(const Tensor& x) {
  return SigmoidTwin::apply(x);
}
Tensor tanh(const Tensor& x) {
  return TanhTwin::apply(x);
}
Tensor elu(const Tensor& x, double alpha, double scale, double input_scale) {
  return ELUTwin::apply(x, alpha, scale, input_scale);
}
Tensor hardtanh(const Tensor& x, double min_val, double max_val) {
  return HardtanhTwin::apply(x, min_val, max_val);
}
Tensor hardsigmoid(const Tensor& x) {
  return HardsigmoidTwin::apply(x);
}
Tensor hardswish(const Tensor& x) {
  return HardswishTwin::apply(x);
}
Tensor softplus(const Tensor& x, double beta, double threshold) {
  return SoftplusTwin::apply(x, beta, threshold);
}
Tensor mish(const Tensor& x) {
  return MishTwin::apply(x);
}
Tensor logsigmoid(const Tensor& x) {
  return LogSigmoidTwin::apply(x);
}
Tensor prelu(const Tensor& input, const Tensor& weight) {
  return PReLUTwin::apply(input, weight);
}
Tensor glu(const Tensor& input, int64_t dim) {
  return GLUTwin::apply(input, dim);
}

}  // namespace manualgrad
