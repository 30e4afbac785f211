// Winograd F(4x4, 3x3) convolution transforms for channels-last fp32 tensors (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", CVPR 2016). The batched GEMM between the
// two transforms is torch.bmm; these kernels gather 6x6 input tiles into the transformed domain
// and scatter the products back as 4x4 output tiles plus the bias. The transform matrices come
// from the caller. Parallel with OpenMP over tiles, linked against the libgomp torch loaded, so
// both share one thread pool.
#include <algorithm>
#include <cstdint>

namespace {

constexpr int M = 4;          // output tile
constexpr int A = M + 3 - 1;  // input tile for a 3x3 kernel
constexpr int kLanes = 16;    // channels per block: one AVX-512 register of fp32 (two AVX2 ones)

typedef float Vec __attribute__((vector_size(64)));
typedef float UnalignedVec __attribute__((vector_size(64), aligned(4), may_alias));

inline Vec load(const float* p, int n) {
  if (n == kLanes) return *reinterpret_cast<const UnalignedVec*>(p);
  Vec v = {};
  for (int c = 0; c < n; ++c) v[c] = p[c];
  return v;
}

inline void store(float* p, Vec v, int n) {
  if (n == kLanes) {
    *reinterpret_cast<UnalignedVec*>(p) = v;
  } else {
    for (int c = 0; c < n; ++c) p[c] = v[c];
  }
}

// out = mat in, along the first tile axis: out[i][j] = sum_k mat[i][k] in[k][j] (mat is R x A).
template <int R>
inline void transform_rows(const float* mat, const Vec (&in)[A][A], Vec (&out)[R][A]) {
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < A; ++j) {
      Vec acc = {};
#pragma GCC unroll 8
      for (int k = 0; k < A; ++k) acc += mat[i * A + k] * in[k][j];
      out[i][j] = acc;
    }
}

}  // namespace

extern "C" {

// x: [N, H, W, C] (channels-last), zero-padded by `pad` on each side. V: A*A rows, `row_stride`
// floats apart, each [P, C] with P = N * tiles_h * tiles_w in (n, tile_h, tile_w) order.
void zoo_winograd_input(const float* x, float* V, int64_t N, int64_t H, int64_t W, int64_t C, int64_t pad,
                        const float* BT, int64_t row_stride) {
  const int64_t th = (H + 2 * pad - 2 + M - 1) / M, tw = (W + 2 * pad - 2 + M - 1) / M;
  const int64_t P = N * th * tw;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < P; ++p) {
    const int64_t n = p / (th * tw), h0 = (p / tw) % th * M - pad, w0 = p % tw * M - pad;
    for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
      const int cb = static_cast<int>(std::min<int64_t>(kLanes, C - c0));
      Vec d[A][A];
      for (int i = 0; i < A; ++i)
        for (int j = 0; j < A; ++j) {
          const int64_t h = h0 + i, w = w0 + j;
          d[i][j] = (h < 0 || h >= H || w < 0 || w >= W) ? Vec{} : load(x + ((n * H + h) * W + w) * C + c0, cb);
        }
      Vec t[A][A];
      transform_rows<A>(BT, d, t);
#pragma GCC unroll 8
      for (int i = 0; i < A; ++i)
#pragma GCC unroll 8
        for (int j = 0; j < A; ++j) {  // (BT d) B
          Vec acc = {};
#pragma GCC unroll 8
          for (int k = 0; k < A; ++k) acc += BT[j * A + k] * t[i][k];
          store(V + (i * A + j) * row_stride + p * C + c0, acc, cb);
        }
    }
  }
}

// Mt: A*A rows, `row_stride` floats apart, each [P, C]. y: [N, Ho, Wo, C] (channels-last).
void zoo_winograd_output(const float* Mt, float* y, const float* bias, int64_t N, int64_t Ho, int64_t Wo,
                         int64_t C, const float* AT, int64_t row_stride) {
  const int64_t th = (Ho + M - 1) / M, tw = (Wo + M - 1) / M;
  const int64_t P = N * th * tw;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < P; ++p) {
    const int64_t n = p / (th * tw), h0 = (p / tw) % th * M, w0 = p % tw * M;
    for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
      const int cb = static_cast<int>(std::min<int64_t>(kLanes, C - c0));
      Vec m[A][A];
      for (int i = 0; i < A; ++i)
        for (int j = 0; j < A; ++j) m[i][j] = load(Mt + (i * A + j) * row_stride + p * C + c0, cb);
      Vec t[M][A];
      transform_rows<M>(AT, m, t);
      const Vec b = bias != nullptr ? load(bias + c0, cb) : Vec{};
      for (int i = 0; i < M && h0 + i < Ho; ++i)
        for (int j = 0; j < M && w0 + j < Wo; ++j) {  // (AT m) A + bias
          Vec acc = b;
#pragma GCC unroll 8
          for (int k = 0; k < A; ++k) acc += AT[j * A + k] * t[i][k];
          store(y + ((n * Ho + h0 + i) * Wo + w0 + j) * C + c0, acc, cb);
        }
    }
  }
}

}  // extern "C"
