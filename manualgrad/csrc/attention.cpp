// C++ twin of manualgrad.functional.attention.AttentionFunction (see twins.h): the same
// derivation (its docstring), the same cut into blocks (groups of heads × blocks of query rows,
// attention.Blocks), op for op: the causal diagonal's bias, bool and float masks, fully masked
// rows (O = 0), the unshifted exp when the Cauchy–Schwarz bound allows, the dropout keep-mask of
// each block drawn from a CPU generator seeded by seed + block number (attention.keep_mask: the
// same generator and sampling op, so the same bits), dL/dmask and dL/dA. Saved: Q, K, V, O, ℓ
// and the mask; never an (L × S) matrix. The inputs arrive float32/float64 (_ext.eligible), so
// the computation dtype is theirs. First order (grad mode off) the temporaries are written in
// place; with grad mode on inside backward (double backward) every op is out of place, so the
// gradient is differentiable again, as in the Python Function. A call that is one small tile per
// head (one_tile: the real models' heads) runs as one tile instead, forward and first-order
// backward: row loops with no ATen op per step up to kLoopPairs pairs per head, above that the
// products as matmuls over all heads with the element-wise steps fused per row. The score tiles'
// exp is SLEEF's over a clamped argument (exp_flushed): an underflowing one is many times slower.

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "common.h"
#include "twins.h"

namespace manualgrad {
namespace {

constexpr double kUnshiftedBound = 40.0;  // attention.UNSHIFTED_BOUND
constexpr double kInfinity = std::numeric_limits<double>::infinity();
const char* const kInputNames[] = {"query", "key", "value", "mask"};  // the tensor inputs

// One group of batch entries (attention._groups): integer indices `lead` on the leading batch
// dims, then on the next dim the range [start, stop) (the integer `start` when `single`), the
// later dims whole; `whole`: the whole batch at once.
struct Group {
  std::vector<int64_t> lead;
  int64_t start = 0, stop = 0;
  bool single = false, whole = true;
};

std::vector<Group> groups_of(const std::vector<int64_t>& batch, int64_t heads) {
  int64_t total = 1;
  for (int64_t size : batch) {
    total *= size;
  }
  int64_t trailing = 1;
  for (int64_t dim = static_cast<int64_t>(batch.size()) - 1; dim >= 0; --dim) {
    if (trailing * batch[dim] > heads && total > 0) {
      int64_t span = std::max<int64_t>(1, heads / trailing);
      int64_t leading = 1;
      for (int64_t d = 0; d < dim; ++d) {
        leading *= batch[d];
      }
      std::vector<Group> groups;
      for (int64_t flat = 0; flat < leading; ++flat) {
        std::vector<int64_t> lead(dim);
        for (int64_t d = dim - 1, rest = flat; d >= 0; --d) {  // row-major, as itertools.product
          lead[d] = rest % batch[d];
          rest /= batch[d];
        }
        for (int64_t start = 0; start < batch[dim]; start += span) {
          groups.push_back({lead, start, std::min(start + span, batch[dim]), span == 1, false});
        }
      }
      return groups;
    }
    trailing *= batch[dim];
  }
  return {Group{}};
}

// Block (g, r): query rows [start, stop), the keys [0, keys) they may see, its number.
struct Block {
  int64_t index, start, stop, keys;
};

// `fresh` op= other (in place when first order: `fresh` is a temporary nobody else holds), as
// attention._into.
Tensor into_add(bool inplace, Tensor fresh, const Tensor& other) {
  return inplace ? fresh.add_(other) : fresh.add(other);
}
Tensor into_mul(bool inplace, Tensor fresh, const Tensor& other) {
  return inplace ? fresh.mul_(other) : fresh.mul(other);
}
Tensor into_div(bool inplace, Tensor fresh, const Tensor& other) {
  return inplace ? fresh.div_(other) : fresh.div(other);
}
// exp in place over a contiguous float32/float64 tile, an argument below log of the smallest
// normal number giving 0 (exp's value there is subnormal or 0: below every row's sum by more
// than float's range). SLEEF's exp (torch's) of an underflowing argument, the −∞ of a causal or
// masked key included, runs through subnormal intermediates: 6–60× slower on this CPU; clamped
// first, every lane runs at full speed, and NaN stays NaN.
template <typename scalar_t>
void exp_flushed(scalar_t* data, int64_t count) {
  const Vec<scalar_t> floor(std::log(std::numeric_limits<scalar_t>::min())), zero(0);
  for (int64_t i = 0; i < count; i += Vec<scalar_t>::size()) {
    int64_t lanes = std::min<int64_t>(Vec<scalar_t>::size(), count - i);
    Vec<scalar_t> z = Vec<scalar_t>::loadu(data + i, lanes);
    Vec<scalar_t> value = at::vec::maximum(z, floor).exp();
    Vec<scalar_t>::blendv(value, zero, z < floor).store(data + i, lanes);
  }
}

template <typename scalar_t>
void exp_flushed_parallel(scalar_t* data, int64_t count) {
  at::parallel_for(0, count, 32768, [&](int64_t begin, int64_t end) {
    exp_flushed(data + begin, end - begin);
  });
}

Tensor into_exp(bool inplace, Tensor fresh) {
  if (!inplace) {
    return fresh.exp();
  }
  if (!fresh.is_contiguous()) {
    return fresh.exp_();
  }
  AT_DISPATCH_FLOATING_TYPES(fresh.scalar_type(), "attention_exp", [&] {
    exp_flushed_parallel(fresh.data_ptr<scalar_t>(), fresh.numel());
  });
  return fresh;
}

// (..., N, K) → its transpose as a product's right operand: a view for a matrix, a contiguous
// copy for a batch of them (attention._right).
Tensor right(const Tensor& tensor) {
  Tensor transposed = tensor.transpose(-2, -1);
  return tensor.dim() == 2 ? transposed : transposed.contiguous();
}

// (..., N, K) → a fresh (..., N, K + 1) with a last column of ones (attention._ones_column).
Tensor ones_column(const Tensor& tensor) {
  std::vector<int64_t> shape = tensor.sizes().vec();
  shape.back() = 1;
  return at::cat({tensor, at::ones(shape, tensor.options())}, -1);
}

// −∞ replaced by 0 (attention._finite).
Tensor finite(const Tensor& shift) {
  return shift.masked_fill(shift == -kInfinity, 0.0);
}

// part += contribution, reduced over the dims it broadcast over (attention._accumulate).
void accumulate(Tensor part, const Tensor& contribution) {
  part.add_(contribution.sum_to_size(part.sizes()));
}

// part += alpha · a b (attention._accumulate_product): one addmm_ / baddbmm_ into it when first
// order and a b has the part's batch shape, the part contiguous (baddbmm_ into a narrowed part
// is slower than the product and an add).
void accumulate_product(bool inplace, Tensor part, const Tensor& a, const Tensor& b,
                        double alpha) {
  if (inplace && part.dim() == 2 && a.dim() == 2 && b.dim() == 2) {
    part.addmm_(a, b, 1, alpha);
    return;
  }
  auto batch_of = [](const Tensor& t) { return t.sizes().slice(0, t.dim() - 2); };
  bool batched =
      batch_of(a) == batch_of(b) && batch_of(b) == batch_of(part) && part.is_contiguous();
  if (!(inplace && batched)) {  // a narrowed part: the product and an add (baddbmm_ is slower)
    Tensor product = a.matmul(b);
    accumulate(part, inplace ? product.mul_(alpha) : product.mul(alpha));
    return;
  }
  int64_t batch = 1;
  for (int64_t size : batch_of(part)) {
    batch *= size;
  }
  auto flat = [batch](const Tensor& t) { return t.reshape({batch, t.size(-2), t.size(-1)}); };
  part.view({batch, part.size(-2), part.size(-1)}).baddbmm_(flat(a), flat(b), 1, alpha);
}

// Block `index`'s bool dropout keep-mask (*batch, rows, S) for shape = (*batch, S)
// (attention.keep_mask: a CPU generator seeded by seed + index, bernoulli_(1 − p)).
Tensor keep_mask(std::vector<int64_t> shape, int64_t rows, double p, int64_t seed,
                 int64_t index) {
  at::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed + index));
  shape.insert(shape.end() - 1, rows);
  return at::empty(shape, at::TensorOptions().dtype(at::kBool)).bernoulli_(1 - p, generator);
}

constexpr int64_t kTilePairs = 4096;  // query × key pairs per head of a call taken in one tile
constexpr int64_t kLoopPairs = 1024;  // up to which the tile runs row loops, above it products
constexpr int64_t kMinBlockRows = 16;  // attention.MIN_BLOCK_ROWS

// The call is one tile (the fused passes below): no dropout or weights, at most kTilePairs pairs
// per head, blocks of at least the automatic cut's fewest rows (a causal call's four blocks skip
// masked keys the tile's loops never visit; a finer cut asks for the blocked path), and V's batch
// dims broadcast to Q's and K's (else the blocked path raises the Python Function's error).
bool one_tile(const Tensor& query, const Tensor& key, const Tensor& value, int64_t rows,
              double dropout_p, bool need_weights) {
  int64_t length = query.size(-2), source = key.size(-2);
  if (dropout_p != 0.0 || need_weights || rows < std::min(length, kMinBlockRows) ||
      length * source > kTilePairs) {
    return false;
  }
  std::vector<int64_t> batch = at::infer_size(query.sizes().slice(0, query.dim() - 2),
                                              key.sizes().slice(0, key.dim() - 2));
  int64_t missing = static_cast<int64_t>(batch.size()) - (value.dim() - 2);
  for (int64_t d = 0; d < value.dim() - 2; ++d) {
    if (missing < 0 || (value.size(d) != 1 && value.size(d) != batch[d + missing])) {
      return false;
    }
  }
  return missing >= 0;
}

// What every block of one call shares (attention._Plan).
struct Plan {
  Tensor query, key;
  std::optional<Tensor> mask;
  double scale, dropout_p;
  bool is_causal;
  int64_t seed, length, source, rows, starts;
  std::vector<int64_t> batch;
  std::vector<Group> groups;
  Tensor bias;  // the causal diagonal's −∞ above it; undefined if not causal or tiled
  bool guarded, inplace;

  // tiled: the call runs as one tile (one_tile), not in blocks.
  Plan(const Tensor& q, const Tensor& k, const std::optional<Tensor>& m, double scale_,
       bool causal, double p, int64_t seed_, int64_t heads, int64_t rows_, bool inplace_,
       bool tiled)
      : query(q), key(k), mask(m), scale(scale_), dropout_p(p), is_causal(causal), seed(seed_),
        length(q.size(-2)), source(k.size(-2)), rows(rows_), inplace(inplace_) {
    batch = at::infer_size(q.sizes().slice(0, q.dim() - 2), k.sizes().slice(0, k.dim() - 2));
    starts = (std::max<int64_t>(length, 1) + rows - 1) / rows;
    if (!tiled) {
      groups = groups_of(batch, heads);
    }
    if (is_causal && !tiled) {  // j > i on a block's diagonal square
      bias = at::full({rows, rows}, -kInfinity, q.options()).triu_(1);
    }
    guarded = mask.has_value() || source == 0;
  }

  // Whether forward may take exp(Z) unshifted (_Plan.unshifted).
  bool unshifted() const {
    bool floating = mask.has_value() && mask->scalar_type() != at::kBool;
    if (floating || !inplace || query.numel() == 0 || key.numel() == 0) {
      return false;
    }
    auto norm = [](const Tensor& t) {
      return at::linalg_vector_norm(t, 2, at::IntArrayRef{-1}, false, std::nullopt).amax();
    };
    return (norm(query) * norm(key)).item<double>() * std::abs(scale) < kUnshiftedBound;
  }

  // ``tensor``'s entries of ``group`` (Blocks.select): a size-1 or missing dim broadcasts.
  Tensor select(const Tensor& tensor, const Group& group) const {
    if (group.whole) {
      return tensor;
    }
    int64_t missing = static_cast<int64_t>(batch.size()) - (tensor.dim() - 2);
    int64_t entries = static_cast<int64_t>(group.lead.size()) + 1;
    Tensor view = tensor;
    int64_t position = 0;
    for (int64_t dim = std::max<int64_t>(missing, 0); dim < entries; ++dim) {
      bool integer = dim < entries - 1 || group.single;
      int64_t index = dim < entries - 1 ? group.lead[dim] : group.start;
      if (tensor.size(dim - missing) == 1) {
        if (integer) {
          view = view.select(position, 0);
        } else {
          ++position;
        }
      } else if (integer) {
        view = view.select(position, index);
      } else {
        view = view.slice(position, group.start, group.stop);
        ++position;
      }
    }
    return view.is_same(tensor) ? tensor.alias() : view;  // a view, as tensor[()] is
  }

  // The batch shape of ``group``'s tiles (Blocks.group_batch).
  std::vector<int64_t> group_batch(const Group& group) const {
    if (group.whole) {
      return batch;
    }
    std::vector<int64_t> shape;
    if (!group.single) {
      shape.push_back(group.stop - group.start);
    }
    shape.insert(shape.end(), batch.begin() + static_cast<int64_t>(group.lead.size()) + 1,
                 batch.end());
    return shape;
  }

  // One (..., L, X) tensor per group → the call's (*batch, L, X) (Blocks.assemble).
  Tensor assemble(std::vector<Tensor> parts) const {
    if (groups.size() == 1 && groups[0].whole) {
      return parts[0];
    }
    for (size_t g = 0; g < parts.size(); ++g) {
      if (groups[g].single) {
        parts[g] = parts[g].unsqueeze(0);
      }
    }
    Tensor whole = at::cat(parts, 0);
    std::vector<int64_t> shape = batch;
    shape.push_back(whole.size(-2));
    shape.push_back(whole.size(-1));
    return whole.reshape(shape);
  }
};

// One group of heads: its views of the inputs, its blocks, each block's score tile and dropout
// keep-mask (attention._Tiles).
struct Tiles {
  const Plan& plan;
  const Group& group;
  int64_t number;
  Tensor query, key;
  std::optional<Tensor> mask;
  std::vector<int64_t> tile_shape;

  Tiles(const Plan& plan_, int64_t number_)
      : plan(plan_), group(plan_.groups[number_]), number(number_) {
    query = select(plan.query);
    key = select(plan.key);
    if (plan.mask) {
      mask = select(*plan.mask);
    }
    tile_shape = plan.group_batch(group);
    tile_shape.push_back(plan.source);
  }

  Tensor select(const Tensor& tensor) const { return plan.select(tensor, group); }

  // Blocks of ``rows`` query rows (one empty block for an empty query).
  std::vector<Block> blocks() const {
    std::vector<Block> blocks;
    for (int64_t row = 0; row < plan.starts; ++row) {
      int64_t start = row * plan.rows, stop = std::min(start + plan.rows, plan.length);
      int64_t keys = plan.is_causal ? std::min(plan.source, stop) : plan.source;
      blocks.push_back({number * plan.starts + row, start, stop, keys});
    }
    return blocks;
  }

  // ``tensor`` (..., L, ·) cut into the blocks' rows.
  std::vector<Tensor> rows(const Tensor& tensor) const {
    if (plan.starts == 1) {
      return {tensor};
    }
    return tensor.split(plan.rows, -2);
  }

  // ``tensor`` narrowed along ``dim`` to the keys the block sees.
  Tensor seen(const Block& block, const Tensor& tensor, int64_t dim) const {
    return block.keys == plan.source ? tensor : tensor.narrow(dim, 0, block.keys);
  }

  // The mask's tile of the block's rows (all of it for a mask broadcast over rows).
  Tensor mask_rows(const Block& block, const Tensor& tensor) const {
    return tensor.size(-2) == 1 ? tensor : tensor.slice(-2, block.start, block.stop);
  }

  // Z = Q (s·Kᵀ) + B on the block's rows and keys (or Z − ℓ from [Q | −ℓ], [s·Kᵀ ; 1]).
  Tensor scores(const Block& block, const Tensor& rows, const Tensor& key_t) const {
    Tensor scores = rows.matmul(seen(block, key_t, -1));
    if (plan.bias.defined() && block.keys > block.start + 1) {
      Tensor diagonal =
          plan.bias.slice(0, 0, block.stop - block.start).slice(1, 0, block.keys - block.start);
      if (plan.inplace) {
        scores.slice(-1, block.start).add_(diagonal);
      } else {
        scores = at::cat(
            {scores.slice(-1, 0, block.start), scores.slice(-1, block.start) + diagonal}, -1);
      }
    }
    if (!mask) {
      return scores;
    }
    Tensor tile = mask_rows(block, *mask).slice(-1, 0, block.keys);
    if (tile.scalar_type() == at::kBool) {
      Tensor masked = tile.logical_not();
      return plan.inplace ? scores.masked_fill_(masked, -kInfinity)
                          : scores.masked_fill(masked, -kInfinity);
    }
    return into_add(plan.inplace, scores, tile);
  }

  // M / (1 − p) on the block's rows and keys, undefined without dropout (_Tiles.keep).
  Tensor keep(const Block& block) const {
    if (plan.dropout_p == 0.0) {
      return Tensor();
    }
    Tensor mask = keep_mask(tile_shape, block.stop - block.start, plan.dropout_p, plan.seed,
                            block.index);
    Tensor noise = mask.slice(-1, 0, block.keys).to(plan.query.scalar_type());
    return plan.dropout_p == 1 ? noise : noise.div_(1 - plan.dropout_p);
  }

  // A (..., rows, keys) tile as (..., rows, S), zeros for the keys a causal block skips.
  Tensor padded(const Tensor& tile) const {
    int64_t missing = plan.source - tile.size(-1);
    if (missing == 0) {
      return tile;
    }
    std::vector<int64_t> shape = tile.sizes().vec();
    shape.back() = missing;
    return at::cat({tile, at::zeros(shape, tile.options())}, -1);
  }

  // The group's output (..., L, Ev), log-sum-exp (..., L, 1) and, if asked, weights.
  std::vector<Tensor> forward(const Tensor& value, bool need_weights, bool unshifted) const {
    Tensor key_t = right(key * plan.scale), values = select(value);
    std::vector<Tensor> query_rows = rows(query);
    std::vector<Block> all = blocks();
    std::vector<std::vector<Tensor>> parts;
    for (size_t b = 0; b < all.size(); ++b) {
      parts.push_back(forward_block(all[b], query_rows[b], key_t, values, need_weights, unshifted));
    }
    if (parts.size() == 1) {
      return parts[0];
    }
    std::vector<Tensor> joined;
    for (size_t i = 0; i < parts[0].size(); ++i) {
      std::vector<Tensor> pieces;
      for (const auto& part : parts) {
        pieces.push_back(part[i]);
      }
      joined.push_back(at::cat(pieces, -2));
    }
    return joined;
  }

  // The block's output rows, log-sum-exp and, if asked, weights (_Tiles.forward_block).
  std::vector<Tensor> forward_block(const Block& block, const Tensor& rows, const Tensor& key_t,
                                    const Tensor& value, bool need_weights,
                                    bool unshifted) const {
    bool inplace = plan.inplace;
    Tensor scores = this->scores(block, rows, key_t), row_max, probs;
    if (unshifted) {
      probs = into_exp(inplace, scores);
    } else {
      if (scores.size(-1) == 0) {
        std::vector<int64_t> shape = scores.sizes().vec();
        shape.back() = 1;
        row_max = at::full(shape, -kInfinity, scores.options());
      } else {
        row_max = scores.amax(-1, true);
      }
      if (plan.guarded) {
        row_max = finite(row_max);
      }
      probs = into_exp(inplace, inplace ? scores.sub_(row_max) : scores.sub(row_max));
    }
    Tensor total = probs.sum(-1, true);
    Tensor keep = this->keep(block);
    Tensor kept = keep.defined() ? into_mul(inplace, probs, keep) : probs;
    // l ≥ 1 on every row with a finite score; l = 0 only on a fully masked row (O = 0)
    double floor = unshifted ? std::exp(-kUnshiftedBound) : 1.0;
    Tensor norm = plan.guarded ? total.clamp_min(floor) : total;
    Tensor output = into_div(inplace, kept.matmul(seen(block, value, -2)), norm);
    Tensor lse = row_max.defined() ? row_max.add(total.log()) : total.log();
    if (!need_weights) {
      return {output, lse};
    }
    return {output, lse, padded(into_div(inplace, kept, norm))};
  }

  // Add the group's terms to grads (dL/dQ, dL/dK, dL/dV, dL/dB; undefined where not needed)
  // from V, −ℓ (shift) and G, −D, GA (undefined when absent) (_Tiles.gradients).
  void gradients(const Tensor& value, const Tensor& shift_all, const Tensor& grad_output_all,
                 const Tensor& neg_delta_all, const Tensor& grad_weights_all,
                 const std::vector<Tensor>& grads) const {
    Tensor grad_output = select(grad_output_all), neg_delta = select(neg_delta_all);
    Tensor grad_weights = grad_weights_all.defined() ? select(grad_weights_all) : Tensor();
    Tensor shift = select(shift_all);
    std::vector<int64_t> expanded = shift.sizes().vec();
    expanded.back() = query.size(-1);
    Tensor query_expanded = query.expand(expanded);
    std::vector<Tensor> views = selected(grads);
    // the Python Function's order of ops, so that a double backward sums in the same order
    Tensor query_shifted = at::cat({query_expanded, shift}, -1);  // [Q | −ℓ]
    Tensor grad_shifted = at::cat({grad_output, neg_delta}, -1);  // [G | −D]
    Tensor key_t = right(ones_column(key * plan.scale));        // [s·Kᵀ ; 1]
    Tensor value_t = right(ones_column(select(value)));         // [Vᵀ ; 1]
    std::vector<std::vector<Tensor>> split{rows(query_shifted), rows(grad_shifted), rows(query),
                                           rows(grad_output), rows(neg_delta)};
    std::vector<Block> all = blocks();
    for (size_t b = 0; b < all.size(); ++b) {
      if (!plan.inplace) {  // autograd refuses writes through views made before another's
        views = selected(grads);
      }
      block_gradients(all[b], {split[0][b], split[1][b], split[2][b], split[3][b], split[4][b]},
                      key_t, value_t, views, grad_weights);
    }
  }

  std::vector<Tensor> selected(const std::vector<Tensor>& grads) const {
    std::vector<Tensor> views;
    for (const Tensor& grad : grads) {
      views.push_back(grad.defined() ? select(grad) : Tensor());
    }
    return views;
  }

  // Add the block's terms to the group's gradients, from the block's rows of ([Q | −ℓ],
  // [G | −D], Q, G, −D) and [s·Kᵀ ; 1], [Vᵀ ; 1] (_Tiles.block_gradients).
  void block_gradients(const Block& block, const std::vector<Tensor>& rows, const Tensor& key_t,
                       const Tensor& value_t, const std::vector<Tensor>& views,
                       const Tensor& grad_weights) const {
    const Tensor &query_shifted = rows[0], &grad_shifted = rows[1], &query_rows = rows[2];
    const Tensor& grad_rows = rows[3];
    Tensor row_delta = rows[4];
    const Tensor &grad_query = views[0], &grad_key = views[1], &grad_value = views[2];
    const Tensor& grad_mask = views[3];
    bool inplace = plan.inplace;
    Tensor probs = into_exp(inplace, scores(block, query_shifted, key_t));
    Tensor keep = this->keep(block);
    Tensor weights = keep.defined() ? probs * keep : probs;
    if (grad_value.defined()) {
      accumulate_product(inplace, seen(block, grad_value, -2), weights.mT(), grad_rows, 1.0);
    }
    if (!grad_query.defined() && !grad_key.defined() && !grad_mask.defined()) {
      return;
    }
    Tensor grad_scores;
    if (!grad_weights.defined() && !keep.defined()) {  // dL/dP − D in one product
      grad_scores = grad_shifted.matmul(seen(block, value_t, -1));
    } else {
      Tensor grad_probs = grad_rows.matmul(seen(block, value_t.slice(-2, 0, -1), -1));
      if (grad_weights.defined()) {
        Tensor grad_a = grad_weights.slice(-2, block.start, block.stop).slice(-1, 0, block.keys);
        grad_probs = into_add(inplace, grad_probs, grad_a);
        row_delta = row_delta - (grad_a * weights).sum(-1, true);
      }
      if (keep.defined()) {
        grad_probs = into_mul(inplace, grad_probs, keep);
      }
      grad_scores = into_add(inplace, grad_probs, row_delta);
    }
    grad_scores = into_mul(inplace, grad_scores, probs);
    if (grad_query.defined()) {
      Tensor part = grad_query.narrow(-2, block.start, block.stop - block.start);
      accumulate_product(inplace, part, grad_scores, seen(block, key, -2), plan.scale);
    }
    if (grad_key.defined()) {
      accumulate_product(inplace, seen(block, grad_key, -2), grad_scores.mT(), query_rows,
                         plan.scale);
    }
    if (grad_mask.defined()) {
      accumulate(mask_rows(block, grad_mask), grad_scores);
    }
  }
};


// ---- a call that is one small tile per head: fused loops -----------------------------------
//
// The same derivation again (AttentionFunction's docstring), one query row at a time: no
// product, exp or row sum is an ATen op, so a small call (the real models' 16 × 16 heads) costs
// no dispatch per op. Forward, row i of batch entry b: z_j = q_i · (s k_j) + B_ij over the keys it
// may see, m = max z, p_j = exp(z_j − m), l = Σ p_j, O_i = Σ p_j v_j / l, ℓ_i = m + log l
// (O_i = 0 and ℓ_i = −∞ for a row with no finite score). First-order backward, per batch entry:
// D_i = G_i · O_i − Gℓ_i, p_ij = exp(z_ij − ℓ_i), dL/dV_j += p_ij G_i,
// dL/dZ_ij = p_ij (G_i · v_j − D_i), dL/dQ_i += s dL/dZ_ij k_j, dL/dK_j += s dL/dZ_ij q_i; the
// batch entries a broadcast operand shares are summed after. Float32/float64, sums in the
// element type (as the products'), exp as exp_flushed.

constexpr int64_t kTileWork = 16384;  // multiply-adds per thread at least

template <typename T>
T dot(const T* a, const T* b, int64_t count) {
  Vec<T> sum(0);
  for (int64_t i = 0; i < count; i += Vec<T>::size()) {
    int64_t lanes = std::min<int64_t>(Vec<T>::size(), count - i);
    sum = at::vec::fmadd(Vec<T>::loadu(a + i, lanes), Vec<T>::loadu(b + i, lanes), sum);
  }
  return at::vec::vec_reduce_all<T>([](Vec<T>& x, Vec<T>& y) { return x + y; }, sum);
}

// y += alpha · x
template <typename T>
void axpy(T* y, T alpha, const T* x, int64_t count) {
  const Vec<T> scale(alpha);
  for (int64_t i = 0; i < count; i += Vec<T>::size()) {
    int64_t lanes = std::min<int64_t>(Vec<T>::size(), count - i);
    at::vec::fmadd(scale, Vec<T>::loadu(x + i, lanes), Vec<T>::loadu(y + i, lanes))
        .store(y + i, lanes);
  }
}

// A (..., rows, columns) operand of a call with batch shape `batch`, its last dim dense: the
// element offset of each batch entry (flat, row-major; a missing or size-1 dim broadcasts) and
// of each row (0 for a row broadcast, as a mask's (1, S)).
struct Strided {
  Tensor tensor;
  const char* data;
  int64_t item, row_stride;
  std::vector<int64_t> offsets;

  Strided(const Tensor& t, const std::vector<int64_t>& batch)
      : tensor(t.stride(-1) == 1 || t.size(-1) <= 1 ? t : t.contiguous()) {
    data = static_cast<const char*>(tensor.const_data_ptr());
    item = static_cast<int64_t>(tensor.element_size());
    row_stride = tensor.size(-2) == 1 ? 0 : tensor.stride(-2);
    int64_t total = c10::multiply_integers(batch);
    int64_t missing = static_cast<int64_t>(batch.size()) - (tensor.dim() - 2);
    offsets.assign(total, 0);
    for (int64_t flat = 0; flat < total; ++flat) {
      for (int64_t d = static_cast<int64_t>(batch.size()) - 1, rest = flat; d >= 0; --d) {
        int64_t index = rest % batch[d], dim = d - missing;
        rest /= batch[d];
        if (dim >= 0 && tensor.size(dim) != 1) {
          offsets[flat] += index * tensor.stride(dim);
        }
      }
    }
  }

  template <typename T>
  const T* row(int64_t entry, int64_t i) const {
    return reinterpret_cast<const T*>(data + (offsets[entry] + i * row_stride) * item);
  }
};

// The mask's row i of batch entry b on the first `keys` scores: −∞ where a bool mask is False,
// a float mask added.
template <typename T>
void add_mask(const Strided& mask, int64_t b, int64_t i, T* scores, int64_t keys) {
  if (mask.tensor.scalar_type() == at::kBool) {
    const bool* allowed = mask.row<bool>(b, i);
    for (int64_t j = 0; j < keys; ++j) {
      scores[j] = allowed[j] ? scores[j] : -std::numeric_limits<T>::infinity();
    }
    return;
  }
  const T* bias = mask.row<T>(b, i);
  for (int64_t j = 0; j < keys; ++j) {
    scores[j] += bias[j];
  }
}

// Row i of batch entry b's scores, z_j holding q_i · k_j on entry: z_j ← s·z_j + B_ij over the
// keys the row may see; how many keys.
template <typename T>
int64_t scale_and_mask(const Plan& plan, const std::optional<Strided>& mask, int64_t b,
                       int64_t i, T* z) {
  int64_t keys = plan.is_causal ? std::min(plan.source, i + 1) : plan.source;
  const T scale = static_cast<T>(plan.scale);
  for (int64_t j = 0; j < keys; ++j) {
    z[j] *= scale;
  }
  if (mask) {
    add_mask(*mask, b, i, z, keys);
  }
  return keys;
}

// z_j ← exp(z_j − shift) over the first `keys` scores (exp_flushed); all 0 when the shift is
// −∞ (a row with no finite score: P = 0).
template <typename T>
void shifted_exp(T* z, int64_t keys, T shift) {
  if (shift == -std::numeric_limits<T>::infinity()) {
    std::fill(z, z + keys, T(0));
    return;
  }
  for (int64_t j = 0; j < keys; ++j) {
    z[j] -= shift;
  }
  exp_flushed(z, keys);
}

// The scores z_j = s·q_i·k_j + B_ij of row i of batch entry b over its keys, written to
// `scores`; how many keys.
template <typename T>
int64_t row_scores(const Plan& plan, const Strided& query, const Strided& key,
                   const std::optional<Strided>& mask, int64_t b, int64_t i, T* scores) {
  int64_t keys = plan.is_causal ? std::min(plan.source, i + 1) : plan.source;
  int64_t width = plan.query.size(-1);
  const T* q = query.row<T>(b, i);
  for (int64_t j = 0; j < keys; ++j) {
    scores[j] = dot(q, key.row<T>(b, j), width);
  }
  return scale_and_mask(plan, mask, b, i, scores);
}

// The operands of a one-tile call: Q, K, V and the mask (a float mask in the inputs' dtype).
struct TileOperands {
  Strided query, key, value;
  std::optional<Strided> mask;
  int64_t entries;

  TileOperands(const Plan& plan, const Tensor& value_)
      : query(plan.query, plan.batch), key(plan.key, plan.batch), value(value_, plan.batch),
        entries(c10::multiply_integers(plan.batch)) {
    if (plan.mask) {
      const Tensor& m = *plan.mask;
      bool floating = m.scalar_type() != at::kBool;
      mask.emplace(floating ? m.to(plan.query.scalar_type()) : m, plan.batch);
    }
  }

  int64_t grain(const Plan& plan) const {
    int64_t work = plan.length * plan.source * (plan.query.size(-1) + value.tensor.size(-1));
    return std::max<int64_t>(1, kTileWork / std::max<int64_t>(work, 1));
  }
};

// O (*batch, L, Ev) and ℓ (*batch, L) of a one-tile call.
std::vector<Tensor> tile_forward(const Plan& plan, const Tensor& value) {
  TileOperands in(plan, value);
  int64_t length = plan.length, width = value.size(-1);
  std::vector<int64_t> shape = plan.batch;
  shape.push_back(length);
  Tensor lse = at::empty(shape, plan.query.options());
  shape.push_back(width);
  Tensor output = at::empty(shape, plan.query.options());
  AT_DISPATCH_FLOATING_TYPES(output.scalar_type(), "attention_tile", [&] {
    using T = scalar_t;
    T* out = output.data_ptr<T>();
    T* row_lse = lse.data_ptr<T>();
    at::parallel_for(0, in.entries, in.grain(plan), [&](int64_t begin, int64_t end) {
      std::vector<T> scores(plan.source);
      for (int64_t b = begin; b < end; ++b) {
        for (int64_t i = 0; i < length; ++i) {
          T* o = out + (b * length + i) * width;
          int64_t keys = row_scores(plan, in.query, in.key, in.mask, b, i, scores.data());
          T top = -std::numeric_limits<T>::infinity();
          for (int64_t j = 0; j < keys; ++j) {
            top = std::max(top, scores[j]);
          }
          std::fill(o, o + width, T(0));
          if (top == -std::numeric_limits<T>::infinity()) {  // no finite score: P = 0
            row_lse[b * length + i] = top;
            continue;
          }
          shifted_exp(scores.data(), keys, top);
          T total = 0;
          for (int64_t j = 0; j < keys; ++j) {
            total += scores[j];
            axpy(o, scores[j], in.value.row<T>(b, j), width);  // p = 0 too: 0 · inf is NaN
          }
          for (int64_t e = 0; e < width; ++e) {
            o[e] /= total;
          }
          row_lse[b * length + i] = top + std::log(total);
        }
      }
    });
  });
  return {output, lse};
}

// dL/dQ, dL/dK, dL/dV of a one-tile call (each summed to its input's shape), first order.
std::vector<Tensor> tile_gradients(const Plan& plan, const Tensor& value, const Tensor& output,
                                  const Tensor& lse, const Tensor& grad_output,
                                  const Tensor& grad_lse) {
  TileOperands in(plan, value);
  Strided out(output, plan.batch), grad(grad_output, plan.batch);
  Tensor grad_lse_dense = grad_lse.contiguous(), lse_dense = lse.contiguous();
  int64_t length = plan.length, source = plan.source;
  int64_t width = plan.query.size(-1), value_width = value.size(-1);
  auto full = [&](int64_t rows, int64_t columns) {
    std::vector<int64_t> shape = plan.batch;
    shape.push_back(rows);
    shape.push_back(columns);
    return at::zeros(shape, plan.query.options());
  };
  Tensor grad_query = full(length, width), grad_key = full(source, width);
  Tensor grad_value = full(source, value_width);
  AT_DISPATCH_FLOATING_TYPES(grad_query.scalar_type(), "attention_tile_gradients", [&] {
    using T = scalar_t;
    const T scale = static_cast<T>(plan.scale);
    const T* row_lse = lse_dense.const_data_ptr<T>();
    const T* row_grad_lse = grad_lse_dense.const_data_ptr<T>();
    T* grad_queries = grad_query.data_ptr<T>();
    T* grad_keys = grad_key.data_ptr<T>();
    T* grad_values = grad_value.data_ptr<T>();
    at::parallel_for(0, in.entries, in.grain(plan), [&](int64_t begin, int64_t end) {
      std::vector<T> probs(source);
      for (int64_t b = begin; b < end; ++b) {
        T* dq = grad_queries + b * length * width;
        T* dk = grad_keys + b * source * width;
        T* dv = grad_values + b * source * value_width;
        for (int64_t i = 0; i < length; ++i) {
          T shift = row_lse[b * length + i];
          if (shift == -std::numeric_limits<T>::infinity()) {  // no finite score: P = 0
            continue;
          }
          const T* g = grad.row<T>(b, i);
          const T* q = in.query.row<T>(b, i);
          T delta = dot(g, out.row<T>(b, i), value_width) - row_grad_lse[b * length + i];
          int64_t keys = row_scores(plan, in.query, in.key, in.mask, b, i, probs.data());
          shifted_exp(probs.data(), keys, shift);
          for (int64_t j = 0; j < keys; ++j) {
            T p = probs[j];  // p = 0 included, as the products do (0 · inf is NaN)
            const T* v = in.value.row<T>(b, j);
            axpy(dv + j * value_width, p, g, value_width);
            T grad_score = p * (dot(g, v, value_width) - delta) * scale;
            axpy(dq + i * width, grad_score, in.key.row<T>(b, j), width);
            axpy(dk + j * width, grad_score, q, width);
          }
        }
      }
    });
  });
  return {grad_query.sum_to_size(plan.query.sizes()), grad_key.sum_to_size(plan.key.sizes()),
          grad_value.sum_to_size(value.sizes())};
}

// The one-tile call with its products as ATen matmuls over all heads at once (Z = Q Kᵀ,
// O = P V; backward dL/dV = Pᵀ G, dL/dP = G Vᵀ, dL/dQ = dL/dZ K, dL/dK = dL/dZᵀ Q) and the
// element-wise steps fused per row (s·z + B, the row max, exp, the sum; p = exp(s·z + B − ℓ),
// dL/dZ = s · p (dL/dP − D)): above kLoopPairs pairs per head, where the row loops' dot products
// fall behind (one thread, fwd + bwd against native: 1×1×64×64 2.46 → 1.72×,
// 1×4×64×32 3.59 → 1.57×; at 16 × 16 the loops win, 1.33 against 1.74×).
std::vector<Tensor> tile_forward_products(const Plan& plan, const Tensor& value) {
  TileOperands in(plan, value);
  int64_t length = plan.length, source = plan.source;
  Tensor scores = at::matmul(plan.query, plan.key.transpose(-2, -1)).contiguous();
  std::vector<int64_t> shape = plan.batch;
  shape.push_back(length);
  Tensor lse = at::empty(shape, plan.query.options());
  Tensor totals = at::empty(shape, plan.query.options());
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "attention_tile_products", [&] {
    using T = scalar_t;
    T* z = scores.data_ptr<T>();
    T* row_lse = lse.data_ptr<T>();
    T* row_total = totals.data_ptr<T>();
    parallel_rows(in.entries * length, source, [&](int64_t r) {
      T* row = z + r * source;
      int64_t keys = scale_and_mask(plan, in.mask, r / length, r % length, row);
      std::fill(row + keys, row + source, T(0));  // keys the row may not see: P = 0
      T top = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j < keys; ++j) {
        top = std::max(top, row[j]);
      }
      shifted_exp(row, keys, top);
      T total = 0;
      for (int64_t j = 0; j < keys; ++j) {
        total += row[j];
      }
      row_total[r] = total == 0 ? T(1) : total;  // a row without a finite score: O = 0
      row_lse[r] = top == -std::numeric_limits<T>::infinity() ? top : top + std::log(total);
    });
  });
  Tensor output = at::matmul(scores, value).contiguous();
  output.div_(totals.unsqueeze(-1));
  return {output, lse};
}

std::vector<Tensor> tile_gradients_products(const Plan& plan, const Tensor& value,
                                            const Tensor& output, const Tensor& lse,
                                            const Tensor& grad_output, const Tensor& grad_lse) {
  TileOperands in(plan, value);
  Strided out(output, plan.batch), grad(grad_output, plan.batch);
  Tensor grad_lse_dense = grad_lse.contiguous(), lse_dense = lse.contiguous();
  int64_t length = plan.length, source = plan.source, value_width = value.size(-1);
  Tensor probs = at::matmul(plan.query, plan.key.transpose(-2, -1)).contiguous();
  std::vector<int64_t> shape = plan.batch;
  shape.push_back(length);
  Tensor delta = at::empty(shape, plan.query.options());
  int64_t rows = in.entries * length;
  AT_DISPATCH_FLOATING_TYPES(probs.scalar_type(), "attention_tile_products_p", [&] {
    using T = scalar_t;
    T* p = probs.data_ptr<T>();
    T* row_delta = delta.data_ptr<T>();
    const T* row_lse = lse_dense.const_data_ptr<T>();
    const T* row_grad_lse = grad_lse_dense.const_data_ptr<T>();
    parallel_rows(rows, source, [&](int64_t r) {
      int64_t b = r / length, i = r % length;
      T* row = p + r * source;
      int64_t keys = scale_and_mask(plan, in.mask, b, i, row);
      std::fill(row + keys, row + source, T(0));  // keys the row may not see: P = 0
      shifted_exp(row, keys, row_lse[r]);
      row_delta[r] = dot(grad.row<T>(b, i), out.row<T>(b, i), value_width) - row_grad_lse[r];
    });
  });
  Tensor grad_value = at::matmul(probs.transpose(-2, -1), grad_output);
  Tensor grad_scores = at::matmul(grad_output, value.transpose(-2, -1)).contiguous();
  AT_DISPATCH_FLOATING_TYPES(probs.scalar_type(), "attention_tile_products_ds", [&] {
    using T = scalar_t;
    const T* p = probs.const_data_ptr<T>();
    T* ds = grad_scores.data_ptr<T>();
    const T* row_delta = delta.const_data_ptr<T>();
    const T scale = static_cast<T>(plan.scale);
    parallel_rows(rows, source, [&](int64_t r) {
      for (int64_t j = 0; j < source; ++j) {
        int64_t k = r * source + j;
        ds[k] = p[k] * (ds[k] - row_delta[r]) * scale;
      }
    });
  });
  Tensor grad_query = at::matmul(grad_scores, plan.key);
  Tensor grad_key = at::matmul(grad_scores.transpose(-2, -1), plan.query);
  return {grad_query.sum_to_size(plan.query.sizes()), grad_key.sum_to_size(plan.key.sizes()),
          grad_value.sum_to_size(value.sizes())};
}

}  // namespace

// Python: manualgrad.functional.attention.AttentionFunction.
struct AttentionTwin : public TwinFunction<AttentionTwin> {
  static variable_list forward(TwinContext* ctx, const Tensor& query, const Tensor& key,
                               const Tensor& value, const std::optional<Tensor>& attn_mask,
                               double scale, bool is_causal, double dropout_p, int64_t seed,
                               int64_t heads, int64_t rows, bool need_weights) {
    bool tiled = one_tile(query, key, value, rows, dropout_p, need_weights);
    Plan plan(query, key, attn_mask, scale, is_causal, dropout_p, seed, heads, rows, true, tiled);
    variable_list outputs;
    if (tiled) {
      bool loops = query.size(-2) * key.size(-2) <= kLoopPairs;
      outputs = loops ? tile_forward(plan, value) : tile_forward_products(plan, value);
    } else {
      bool unshifted = plan.unshifted();
      std::vector<std::vector<Tensor>> parts;
      for (size_t g = 0; g < plan.groups.size(); ++g) {
        parts.push_back(
            Tiles(plan, static_cast<int64_t>(g)).forward(value, need_weights, unshifted));
      }
      for (size_t i = 0; i < parts[0].size(); ++i) {
        std::vector<Tensor> pieces;
        for (const auto& part : parts) {
          pieces.push_back(part[i]);
        }
        outputs.push_back(plan.assemble(pieces));
      }
      outputs[1] = outputs[1].squeeze(-1);
    }
    // the output in a non-contiguous query's layout (attention._laid_out_as)
    if (!query.is_contiguous() && query.sizes() == outputs[0].sizes()) {
      outputs[0] = at::empty_like(query).copy_(outputs[0]);
    }
    ctx->saved_data["options"] = std::vector<double>{scale, dropout_p};
    ctx->saved_data["cut"] = std::vector<int64_t>{seed, heads, rows};
    ctx->saved_data["is_causal"] = is_causal;
    ctx->saved_data["need_weights"] = need_weights;
    ctx->saved_data["has_mask"] = attn_mask.has_value();
    bool empty = query.size(-2) == 0 || key.size(-2) == 0;
    ctx->saved_data["empty"] = empty;
    if (empty) {  // every gradient is zero, nothing needs saving: the inputs' shapes only
      Tensor inputs[] = {query, key, value, attn_mask.value_or(Tensor())};
      for (int i = 0; i < 4; ++i) {
        if (inputs[i].defined()) {
          ctx->saved_data[kInputNames[i]] = inputs[i].sizes().vec();
        }
      }
    } else {
      ctx->save_for_backward(
          {query, key, value, outputs[0], outputs[1], attn_mask.value_or(Tensor())});
    }
    return outputs;
  }

  static variable_list backward(TwinContext* ctx, variable_list grads) {
    bool is_causal = ctx->saved_data["is_causal"].toBool();
    bool need_weights = ctx->saved_data["need_weights"].toBool();
    bool has_mask = ctx->saved_data["has_mask"].toBool();
    std::vector<bool> needed{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                             ctx->needs_input_grad(2), has_mask && ctx->needs_input_grad(3)};
    variable_list result(11);
    if (ctx->saved_data["empty"].toBool()) {
      for (int i = 0; i < 4; ++i) {
        if (needed[i]) {
          result[i] = at::zeros(ctx->saved_data[kInputNames[i]].toIntVector(), grads[0].options());
        }
      }
      return result;
    }
    variable_list saved = ctx->get_saved_variables();
    const Tensor &query = saved[0], &key = saved[1], &value = saved[2], &output = saved[3];
    const Tensor& lse = saved[4];
    std::optional<Tensor> mask;
    if (has_mask) {
      mask = saved[5];
    }
    std::vector<double> options = ctx->saved_data["options"].toDoubleVector();
    std::vector<int64_t> cut = ctx->saved_data["cut"].toIntVector();
    bool inplace = !at::GradMode::is_enabled() && plain(grads[0]);
    bool tiled = inplace && !needed[3] && plain(grads[1]) &&
                 one_tile(query, key, value, cut[2], options[1], need_weights);
    Plan plan(query, key, mask, options[0], is_causal, options[1], cut[0], cut[1], cut[2],
              inplace, tiled);
    const Tensor& grad_output = grads[0];
    if (tiled) {
      bool loops = query.size(-2) * key.size(-2) <= kLoopPairs;
      std::vector<Tensor> tile =
          loops ? tile_gradients(plan, value, output, lse, grad_output, grads[1])
                : tile_gradients_products(plan, value, output, lse, grad_output, grads[1]);
      for (int i = 0; i < 3; ++i) {
        result[i] = needed[i] ? tile[i] : Tensor();
      }
      return result;
    }
    // −D's first part, before the accumulators exist
    Tensor neg_delta = grads[1].unsqueeze(-1) - (grad_output * output).sum(-1, true);
    const Tensor* inputs[] = {&query, &key, &value, has_mask ? &saved[5] : nullptr};
    std::vector<Tensor> accumulators(4);
    for (int i = 0; i < 4; ++i) {
      if (needed[i]) {
        accumulators[i] = at::zeros_like(*inputs[i], at::MemoryFormat::Contiguous);
      }
    }
    Tensor shift = finite(lse).neg().unsqueeze(-1);
    Tensor grad_weights = need_weights ? grads[2] : Tensor();
    for (size_t g = 0; g < plan.groups.size(); ++g) {
      Tiles(plan, static_cast<int64_t>(g))
          .gradients(value, shift, grad_output, neg_delta, grad_weights, accumulators);
    }
    std::copy(accumulators.begin(), accumulators.end(), result.begin());
    return result;
  }
};

std::vector<Tensor> attention(const Tensor& query, const Tensor& key, const Tensor& value,
                              const std::optional<Tensor>& attn_mask, double scale,
                              bool is_causal, double dropout_p, int64_t seed,
                              std::tuple<int64_t, int64_t> blocks, bool need_weights) {
  return AttentionTwin::apply(query, key, value, attn_mask, scale, is_causal, dropout_p, seed,
                              std::get<0>(blocks), std::get<1>(blocks), need_weights);
}

}  // namespace manualgrad
