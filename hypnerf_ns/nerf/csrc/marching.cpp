// CPU kernel of ray marching through per-object occupancy grids (`march` in sampling.py).
//
// Walks every ray step by step and keeps the steps whose point lies in an occupied cell of the
// ray's grid: the same samples as the torch implementation (its two-level march tests coarse
// intervals first only to save tensor work, which a loop does not need), in the same float32
// arithmetic, so the two agree bit for bit. Two passes, both parallel over rays: count each
// ray's samples, then write them at their ray's offset (ray order, front to back).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <vector>

namespace {

struct MarchInputs {
  const float* origins;     // [R, 3]
  const float* directions;  // [R, 3]
  const float* t_near;      // [R]
  const float* t_far;       // [R]
  const float* offset;      // [R] per-ray jitter, in steps
  const bool* occupied;     // [N, G, G, G]
  const int64_t* grid_of_ray;  // [R]
  float lo[3];              // aabb min corner
  float extent[3];          // aabb max - min corner
  float step;
  int64_t resolution;       // G
};

// Calls emit(t) for every step of ray r whose point lies in an occupied cell. Each float
// operation matches the torch code: t = t_near + (k + offset) * step; cell = trunc((o + d t -
// lo) / extent * G), clamped to [0, G - 1].
template <typename Emit>
inline void walk(const MarchInputs& in, int64_t r, Emit emit) {
  const int64_t g = in.resolution;
  const float gf = static_cast<float>(g);
  const float* o = in.origins + 3 * r;
  const float* d = in.directions + 3 * r;
  const bool* grid = in.occupied + in.grid_of_ray[r] * g * g * g;
  const float near = in.t_near[r], far = in.t_far[r], offset = in.offset[r];
  for (int64_t k = 0;; ++k) {
    const float t = near + (static_cast<float>(k) + offset) * in.step;
    if (!(t < far)) break;
    int64_t cell[3];
    for (int a = 0; a < 3; ++a) {
      const float position = o[a] + d[a] * t;
      const int64_t c = static_cast<int64_t>((position - in.lo[a]) / in.extent[a] * gf);
      cell[a] = c < 0 ? 0 : (c > g - 1 ? g - 1 : c);
    }
    if (grid[(cell[0] * g + cell[1]) * g + cell[2]]) emit(t);
  }
}

}  // namespace

// origins, directions [R, 3], t_near, t_far, offset [R] float; occupied [N, G, G, G] bool;
// grid_of_ray [R] int64; aabb [2, 3] -> ray_index [S] int64, t [S] float (sample centres)
std::vector<torch::Tensor> march_occupied(torch::Tensor origins, torch::Tensor directions, torch::Tensor t_near,
                                          torch::Tensor t_far, torch::Tensor offset, double step,
                                          torch::Tensor occupied, torch::Tensor grid_of_ray, torch::Tensor aabb) {
  const int64_t R = origins.size(0);
  MarchInputs in{origins.data_ptr<float>(), directions.data_ptr<float>(), t_near.data_ptr<float>(),
                 t_far.data_ptr<float>(), offset.data_ptr<float>(), occupied.data_ptr<bool>(),
                 grid_of_ray.data_ptr<int64_t>(), {}, {}, static_cast<float>(step), occupied.size(-1)};
  const auto box = aabb.accessor<float, 2>();
  for (int a = 0; a < 3; ++a) {
    in.lo[a] = box[0][a];
    in.extent[a] = box[1][a] - box[0][a];
  }
  std::vector<int64_t> first(R + 1, 0);
  at::parallel_for(0, R, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      int64_t n = 0;
      walk(in, r, [&](float) { ++n; });
      first[r + 1] = n;
    }
  });
  for (int64_t r = 0; r < R; ++r) first[r + 1] += first[r];
  auto ray_index = torch::empty({first[R]}, grid_of_ray.options());
  auto t = torch::empty({first[R]}, origins.options());
  int64_t* ray_out = ray_index.data_ptr<int64_t>();
  float* t_out = t.data_ptr<float>();
  at::parallel_for(0, R, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      int64_t i = first[r];
      walk(in, r, [&](float value) {
        ray_out[i] = r;
        t_out[i++] = value;
      });
    }
  });
  return {ray_index, t};
}
