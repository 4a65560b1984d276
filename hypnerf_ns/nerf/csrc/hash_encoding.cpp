// CPU kernels of the multi-resolution hash encoding with per-object tables.
//
// The same function as `hash_encode` in encoding.py (the reference), fused into one pass over
// the points, so no [P, L, 8, F] intermediate is ever built. The forward pass and the gradient
// with respect to the points are parallel over points; the gradient with respect to the
// tables is parallel over levels, so no two threads ever add into the same table row.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>

namespace {

constexpr uint32_t kPrimeY = 2654435761u;
constexpr uint32_t kPrimeZ = 805459861u;

struct Level {
  float resolution;
  int32_t last_cell;   // cells per axis - 1
  bool dense;
  uint32_t stride_y;   // dense indexing: cells + 1 vertices per axis
  uint32_t stride_z;
};

// The 8 vertices of the cell around one point at one level: table rows and trilinear weights,
// in the reference's vertex order (k = 4 dx + 2 dy + dz). Rows and weights are separable per
// axis, so each axis is worked out once for its two vertices and the 8 combined after.
struct Corners {
  uint32_t row[8];
  float weight[8];
  float axis_weight[3][2];  // per-axis weight of the cell's vertex 0 and 1 (weight[k] is their product)
  float dpos[3];   // d position / d point: the resolution inside (0, 1); 0 at and beyond the bounds, as torch's clamp
};

inline void cell_corners(const float* p, const Level& level, uint32_t mask, Corners& c) {
  uint32_t part[3][2];  // per-axis index contribution of vertex 0 and 1
  float (&w)[3][2] = c.axis_weight;
  for (int a = 0; a < 3; ++a) {
    const float clamped = p[a] > 0.0f ? (p[a] < 1.0f ? p[a] : 1.0f) : 0.0f;
    c.dpos[a] = (p[a] > 0.0f && p[a] < 1.0f) ? level.resolution : 0.0f;
    const float v = clamped * level.resolution;
    int32_t i = static_cast<int32_t>(v);  // floor: v >= 0
    if (i > level.last_cell) i = level.last_cell;
    const float frac = v - static_cast<float>(i);
    w[a][0] = 1.0f - frac;
    w[a][1] = frac;
    const uint32_t u = static_cast<uint32_t>(i);
    const uint32_t scale = level.dense ? (a == 0 ? 1u : a == 1 ? level.stride_y : level.stride_z)
                                       : (a == 0 ? 1u : a == 1 ? kPrimeY : kPrimeZ);
    part[a][0] = u * scale;
    part[a][1] = (u + 1) * scale;
  }
  for (int k = 0; k < 8; ++k) {
    const int dx = k >> 2 & 1, dy = k >> 1 & 1, dz = k & 1;
    const uint32_t index = level.dense ? part[0][dx] + part[1][dy] + part[2][dz] : part[0][dx] ^ part[1][dy] ^ part[2][dz];
    c.row[k] = index & mask;
    c.weight[k] = w[0][dx] * w[1][dy] * w[2][dz];
  }
}

std::vector<Level> make_levels(const torch::Tensor& resolutions, const torch::Tensor& dense) {
  auto r = resolutions.accessor<int32_t, 1>();
  auto d = dense.accessor<bool, 1>();
  std::vector<Level> levels(r.size(0));
  for (int64_t l = 0; l < r.size(0); ++l) {
    const uint32_t vertices = static_cast<uint32_t>(r[l]) + 1;
    levels[l] = {static_cast<float>(r[l]), r[l] - 1, d[l], vertices, vertices * vertices};
  }
  return levels;
}

// The kernels, with the feature count F a compile-time constant so that the loops over an
// entry's features unroll into registers.

// out [P, L * F]
template <int F>
void forward(const float* xp, const int32_t* sp, const float* tp, float* op, int64_t P, int64_t L, int64_t T,
             const std::vector<Level>& levels) {
  const uint32_t mask = static_cast<uint32_t>(T - 1);
  at::parallel_for(0, P, 1024, [&](int64_t begin, int64_t end) {
    Corners c;
    for (int64_t p = begin; p < end; ++p) {
      for (int64_t l = 0; l < L; ++l) {
        cell_corners(xp + 3 * p, levels[l], mask, c);
        const float* table = tp + (static_cast<int64_t>(sp[p]) * L + l) * T * F;
        float acc[F] = {};
        for (int k = 0; k < 8; ++k) {
          const float* row = table + static_cast<int64_t>(c.row[k]) * F;
          for (int f = 0; f < F; ++f) acc[f] += c.weight[k] * row[f];
        }
        float* o = op + (p * L + l) * F;
        for (int f = 0; f < F; ++f) o[f] = acc[f];
      }
    }
  });
}

// grad_tables [B, L, T, F] (zeroed) += d out / d tables . grad_out; parallel over levels, so no
// two threads ever add into the same table row.
template <int F>
void backward_tables(const float* gp, const float* xp, const int32_t* sp, float* tp, int64_t P, int64_t L, int64_t T,
                     const std::vector<Level>& levels) {
  const uint32_t mask = static_cast<uint32_t>(T - 1);
  at::parallel_for(0, L, 1, [&](int64_t level_begin, int64_t level_end) {
    Corners c;
    for (int64_t l = level_begin; l < level_end; ++l) {
      for (int64_t p = 0; p < P; ++p) {
        cell_corners(xp + 3 * p, levels[l], mask, c);
        float* table = tp + (static_cast<int64_t>(sp[p]) * L + l) * T * F;
        const float* g = gp + (p * L + l) * F;
        for (int k = 0; k < 8; ++k) {
          float* row = table + static_cast<int64_t>(c.row[k]) * F;
          for (int f = 0; f < F; ++f) row[f] += c.weight[k] * g[f];
        }
      }
    }
  });
}

// grad_x [P, 3] (zeroed) += d out / d x . grad_out
template <int F>
void backward_points(const float* gp, const float* xp, const int32_t* sp, const float* tp, float* gx, int64_t P,
                     int64_t L, int64_t T, const std::vector<Level>& levels) {
  const uint32_t mask = static_cast<uint32_t>(T - 1);
  at::parallel_for(0, P, 1024, [&](int64_t begin, int64_t end) {
    Corners c;
    for (int64_t p = begin; p < end; ++p) {
      for (int64_t l = 0; l < L; ++l) {
        cell_corners(xp + 3 * p, levels[l], mask, c);
        const float* table = tp + (static_cast<int64_t>(sp[p]) * L + l) * T * F;
        const float* g = gp + (p * L + l) * F;
        for (int k = 0; k < 8; ++k) {
          const int dx = k >> 2 & 1, dy = k >> 1 & 1, dz = k & 1;
          const float wx = c.axis_weight[0][dx], wy = c.axis_weight[1][dy], wz = c.axis_weight[2][dz];
          const float* row = table + static_cast<int64_t>(c.row[k]) * F;
          float dot = 0.0f;
          for (int f = 0; f < F; ++f) dot += row[f] * g[f];
          gx[3 * p + 0] += dot * (dx ? 1.0f : -1.0f) * wy * wz * c.dpos[0];
          gx[3 * p + 1] += dot * wx * (dy ? 1.0f : -1.0f) * wz * c.dpos[1];
          gx[3 * p + 2] += dot * wx * wy * (dz ? 1.0f : -1.0f) * c.dpos[2];
        }
      }
    }
  });
}

#define HASH_ENCODING_DISPATCH(features, call)                                                          \
  switch (features) {                                                                                  \
    case 1: call(1); break;                                                                            \
    case 2: call(2); break;                                                                            \
    case 4: call(4); break;                                                                            \
    case 8: call(8); break;                                                                            \
    default: TORCH_CHECK(false, "hash encoding kernel: 1, 2, 4 or 8 features per entry, got ", features); \
  }

}  // namespace

// x [P, 3] float, slot [P] int32, tables [B, L, T, F] float -> [P, L * F]
torch::Tensor hash_encode_forward(torch::Tensor x, torch::Tensor slot, torch::Tensor tables, torch::Tensor resolutions,
                                  torch::Tensor dense) {
  const int64_t P = x.size(0), L = tables.size(1), T = tables.size(2), F = tables.size(3);
  const auto levels = make_levels(resolutions, dense);
  auto out = torch::empty({P, L * F}, x.options());
#define CALL(f) forward<f>(x.data_ptr<float>(), slot.data_ptr<int32_t>(), tables.data_ptr<float>(), out.data_ptr<float>(), P, L, T, levels)
  HASH_ENCODING_DISPATCH(F, CALL)
#undef CALL
  return out;
}

// grad_out [P, L * F] -> grad_tables [B, L, T, F]
torch::Tensor hash_encode_backward_tables(torch::Tensor grad_out, torch::Tensor x, torch::Tensor slot,
                                          std::vector<int64_t> table_shape, torch::Tensor resolutions,
                                          torch::Tensor dense) {
  const int64_t P = x.size(0), L = table_shape[1], T = table_shape[2], F = table_shape[3];
  const auto levels = make_levels(resolutions, dense);
  auto grad_tables = torch::zeros(table_shape, grad_out.options());
#define CALL(f) backward_tables<f>(grad_out.data_ptr<float>(), x.data_ptr<float>(), slot.data_ptr<int32_t>(), grad_tables.data_ptr<float>(), P, L, T, levels)
  HASH_ENCODING_DISPATCH(F, CALL)
#undef CALL
  return grad_tables;
}

// grad_out [P, L * F] -> grad_x [P, 3]
torch::Tensor hash_encode_backward_points(torch::Tensor grad_out, torch::Tensor x, torch::Tensor slot,
                                          torch::Tensor tables, torch::Tensor resolutions, torch::Tensor dense) {
  const int64_t P = x.size(0), L = tables.size(1), T = tables.size(2), F = tables.size(3);
  const auto levels = make_levels(resolutions, dense);
  auto grad_x = torch::zeros({P, 3}, x.options());
#define CALL(f) backward_points<f>(grad_out.data_ptr<float>(), x.data_ptr<float>(), slot.data_ptr<int32_t>(), tables.data_ptr<float>(), grad_x.data_ptr<float>(), P, L, T, levels)
  HASH_ENCODING_DISPATCH(F, CALL)
#undef CALL
  return grad_x;
}
