// Per-tensor affine quantization of activations to uint8 in one pass over memory:
// y = clamp(round_half_even(x * inv_scale) + zero_point, 0, 255), from bfloat16 or float32.
//
// The input and output are dense buffers of n elements in the same memory order (the caller
// allocates the output with the input's strides), so the loop is elementwise over storage.
// Parallel with OpenMP, linked against the libgomp torch loaded, so torch.set_num_threads applies.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

inline float bf16_to_float(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

inline uint8_t to_u8(float v, float inv_scale, float zero_point) {
  float q = std::nearbyint(v * inv_scale) + zero_point;  // the default rounding mode: half to even
  q = q < 0.f ? 0.f : (q > 255.f ? 255.f : q);
  return static_cast<uint8_t>(q);
}

constexpr int64_t kGrain = 1 << 14;  // elements per OpenMP chunk: small tensors stay on one thread

inline float as_float(uint16_t v) { return bf16_to_float(v); }
inline float as_float(float v) { return v; }

template <typename T>
void quantize(const T* x, uint8_t* y, int64_t n, float inv_scale, int32_t zero_point) {
  const float zp = static_cast<float>(zero_point);
#pragma omp parallel for schedule(static) if (n > kGrain)
  for (int64_t start = 0; start < n; start += kGrain) {
    const int64_t stop = start + kGrain < n ? start + kGrain : n;
#pragma omp simd
    for (int64_t i = start; i < stop; ++i) y[i] = to_u8(as_float(x[i]), inv_scale, zp);
  }
}

}  // namespace

extern "C" {

void zoo_quantize_bf16_u8(const uint16_t* x, uint8_t* y, int64_t n, float inv_scale, int32_t zero_point) {
  quantize(x, y, n, inv_scale, zero_point);
}

void zoo_quantize_f32_u8(const float* x, uint8_t* y, int64_t n, float inv_scale, int32_t zero_point) {
  quantize(x, y, n, inv_scale, zero_point);
}

}  // extern "C"
