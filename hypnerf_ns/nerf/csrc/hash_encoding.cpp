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
  int32_t cells;
  bool dense;
};

struct Corners {
  int64_t row[8];     // table row of each cell vertex, relative to the level's table
  float weight[8];    // trilinear weight of each vertex
  float dweight[8][3];  // d weight / d position (in cell units)
};

// Cell vertices of point (x, y, z) in [0, 1]^3 at one level, with weights and their derivatives.
inline void cell_corners(const float* p, const Level& level, int64_t table_size, bool with_derivative, Corners& c) {
  int32_t cell[3];
  float frac[3];
  float dpos[3];  // d position / d point: the resolution inside (0, 1); 0 at and beyond the bounds, as torch's clamp
  for (int a = 0; a < 3; ++a) {
    dpos[a] = (p[a] > 0.0f && p[a] < 1.0f) ? level.resolution : 0.0f;
    float v = std::fmin(std::fmax(p[a], 0.0f), 1.0f) * level.resolution;
    int32_t i = static_cast<int32_t>(std::floor(v));
    if (i > level.cells - 1) i = level.cells - 1;
    cell[a] = i;
    frac[a] = v - static_cast<float>(i);
  }
  const uint32_t stride_y = static_cast<uint32_t>(level.cells + 1);
  const uint32_t stride_z = stride_y * stride_y;
  const uint32_t mask = static_cast<uint32_t>(table_size - 1);
  for (int k = 0; k < 8; ++k) {
    const uint32_t dx = k >> 2 & 1, dy = k >> 1 & 1, dz = k & 1;  // same vertex order as the reference
    const uint32_t cx = static_cast<uint32_t>(cell[0]) + dx;
    const uint32_t cy = static_cast<uint32_t>(cell[1]) + dy;
    const uint32_t cz = static_cast<uint32_t>(cell[2]) + dz;
    const uint32_t index = level.dense ? cx + cy * stride_y + cz * stride_z : cx ^ (cy * kPrimeY) ^ (cz * kPrimeZ);
    c.row[k] = static_cast<int64_t>(index & mask);
    const float wx = dx ? frac[0] : 1.0f - frac[0];
    const float wy = dy ? frac[1] : 1.0f - frac[1];
    const float wz = dz ? frac[2] : 1.0f - frac[2];
    c.weight[k] = wx * wy * wz;
    if (with_derivative) {
      const float sx = dx ? 1.0f : -1.0f, sy = dy ? 1.0f : -1.0f, sz = dz ? 1.0f : -1.0f;
      c.dweight[k][0] = sx * wy * wz * dpos[0];
      c.dweight[k][1] = wx * sy * wz * dpos[1];
      c.dweight[k][2] = wx * wy * sz * dpos[2];
    }
  }
}

std::vector<Level> make_levels(const torch::Tensor& resolutions, const torch::Tensor& dense) {
  auto r = resolutions.accessor<int32_t, 1>();
  auto d = dense.accessor<bool, 1>();
  std::vector<Level> levels(r.size(0));
  for (int64_t l = 0; l < r.size(0); ++l) levels[l] = {static_cast<float>(r[l]), r[l], d[l]};
  return levels;
}

}  // namespace

// x [P, 3] float, slot [P] int32, tables [B, L, T, F] float -> [P, L * F]
torch::Tensor hash_encode_forward(torch::Tensor x, torch::Tensor slot, torch::Tensor tables, torch::Tensor resolutions,
                                  torch::Tensor dense) {
  const int64_t P = x.size(0), L = tables.size(1), T = tables.size(2), F = tables.size(3);
  auto levels = make_levels(resolutions, dense);
  auto out = torch::empty({P, L * F}, x.options());
  const float* xp = x.data_ptr<float>();
  const int32_t* sp = slot.data_ptr<int32_t>();
  const float* tp = tables.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, P, 1024, [&](int64_t begin, int64_t end) {
    Corners c;
    for (int64_t p = begin; p < end; ++p) {
      for (int64_t l = 0; l < L; ++l) {
        cell_corners(xp + 3 * p, levels[l], T, false, c);
        const float* table = tp + (static_cast<int64_t>(sp[p]) * L + l) * T * F;
        float* o = op + (p * L + l) * F;
        for (int64_t f = 0; f < F; ++f) o[f] = 0.0f;
        for (int k = 0; k < 8; ++k) {
          const float* row = table + c.row[k] * F;
          for (int64_t f = 0; f < F; ++f) o[f] += c.weight[k] * row[f];
        }
      }
    }
  });
  return out;
}

// grad_out [P, L * F] -> grad_tables [B, L, T, F]
torch::Tensor hash_encode_backward_tables(torch::Tensor grad_out, torch::Tensor x, torch::Tensor slot,
                                          std::vector<int64_t> table_shape, torch::Tensor resolutions,
                                          torch::Tensor dense) {
  const int64_t P = x.size(0), L = table_shape[1], T = table_shape[2], F = table_shape[3];
  auto levels = make_levels(resolutions, dense);
  auto grad_tables = torch::zeros(table_shape, grad_out.options());
  const float* xp = x.data_ptr<float>();
  const int32_t* sp = slot.data_ptr<int32_t>();
  const float* gp = grad_out.data_ptr<float>();
  float* tp = grad_tables.data_ptr<float>();
  at::parallel_for(0, L, 1, [&](int64_t level_begin, int64_t level_end) {
    Corners c;
    for (int64_t l = level_begin; l < level_end; ++l) {
      for (int64_t p = 0; p < P; ++p) {
        cell_corners(xp + 3 * p, levels[l], T, false, c);
        float* table = tp + (static_cast<int64_t>(sp[p]) * L + l) * T * F;
        const float* g = gp + (p * L + l) * F;
        for (int k = 0; k < 8; ++k) {
          float* row = table + c.row[k] * F;
          for (int64_t f = 0; f < F; ++f) row[f] += c.weight[k] * g[f];
        }
      }
    }
  });
  return grad_tables;
}

// grad_out [P, L * F] -> grad_x [P, 3]
torch::Tensor hash_encode_backward_points(torch::Tensor grad_out, torch::Tensor x, torch::Tensor slot,
                                          torch::Tensor tables, torch::Tensor resolutions, torch::Tensor dense) {
  const int64_t P = x.size(0), L = tables.size(1), T = tables.size(2), F = tables.size(3);
  auto levels = make_levels(resolutions, dense);
  auto grad_x = torch::zeros({P, 3}, x.options());
  const float* xp = x.data_ptr<float>();
  const int32_t* sp = slot.data_ptr<int32_t>();
  const float* tp = tables.data_ptr<float>();
  const float* gp = grad_out.data_ptr<float>();
  float* gx = grad_x.data_ptr<float>();
  at::parallel_for(0, P, 1024, [&](int64_t begin, int64_t end) {
    Corners c;
    for (int64_t p = begin; p < end; ++p) {
      for (int64_t l = 0; l < L; ++l) {
        cell_corners(xp + 3 * p, levels[l], T, true, c);
        const float* table = tp + (static_cast<int64_t>(sp[p]) * L + l) * T * F;
        const float* g = gp + (p * L + l) * F;
        for (int k = 0; k < 8; ++k) {
          const float* row = table + c.row[k] * F;
          float dot = 0.0f;
          for (int64_t f = 0; f < F; ++f) dot += row[f] * g[f];
          for (int a = 0; a < 3; ++a) gx[3 * p + a] += dot * c.dweight[k][a];
        }
      }
    }
  });
  return grad_x;
}
