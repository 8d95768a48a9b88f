// Swift's SIMD types have no in-register permute by a vector of indices
// (their index subscript is a generic library call); the N:M sparse kernel
// needs one per kept slot: each row lane picks its input from the group's;
// the unstructured sparse kernel spreads packed kept values to their lanes;
// the 2/3/4-bit code kernels widen their codes in an order the optimizer keeps.
#include <stdint.h>
typedef float kick_float8 __attribute__((ext_vector_type(8)));
typedef int32_t kick_int8 __attribute__((ext_vector_type(8)));
typedef float kick_float16 __attribute__((ext_vector_type(16)));

#if defined(__x86_64__)
#include <immintrin.h>
/// out[i] = x[idx[i] & 7] (vpermps).
static inline __attribute__((always_inline, target("avx2"))) kick_float8 kick_permute8(kick_float8 x, kick_int8 idx) {
    return (kick_float8)_mm256_permutevar8x32_ps((__m256)x, (__m256i)idx);
}
/// Eight bytes zero-extended to 32-bit lanes (vpmovzxbd): Swift's
/// conversion between these vector types is a library call in some contexts.
static inline __attribute__((always_inline, target("avx2"))) kick_int8 kick_load_bytes8(const void *p) {
    return (kick_int8)_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}
/// Sixteen 4-bit codes (byte i: lane i low nibble, lane i + 8 high) as
/// floats. The widening load is opaque to the optimizer on purpose:
/// otherwise it splits the nibbles on the bytes first and widens twice,
/// three more instructions per code column in the decode loop.
static inline __attribute__((always_inline, target("avx2"))) kick_float16 kick_load_nibbles16(const void *p) {
    __m256i v;
    __asm__("vpmovzxbd %1, %0" : "=x"(v) : "m"(*(const uint64_t *)p));
    kick_float8 lo = (kick_float8)_mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15)));
    kick_float8 hi = (kick_float8)_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4));
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
/// Sixteen 2- or 3-bit codes (lanes 0-7 in the little-endian word at p,
/// lanes 8-15 in the one at p + bits, each packed low bits first) as
/// floats: one broadcast load, one variable shift and one mask a half.
/// The broadcast is opaque to the optimizer for the reason above: from
/// Swift, the shifts by a constant vector compiled to scalar shifts,
/// inserts and blends.
static inline __attribute__((always_inline, target("avx2"))) kick_float16 kick_load_packed16(const void *p, int bits) {
    __m256i lo, hi;
    __asm__("vpbroadcastd %1, %0" : "=x"(lo) : "m"(*(const uint32_t *)p));
    __asm__("vpbroadcastd %1, %0" : "=x"(hi) : "m"(*(const uint32_t *)((const uint8_t *)p + bits)));
    const __m256i sh = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(bits));
    const __m256i mask = _mm256_set1_epi32((1 << bits) - 1);
    kick_float8 l = (kick_float8)_mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(lo, sh), mask));
    kick_float8 h = (kick_float8)_mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(hi, sh), mask));
    return __builtin_shufflevector(l, h, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
/// Eight bytes sign-extended to 32-bit lanes (vpmovsxbd).
static inline __attribute__((always_inline, target("avx2"))) kick_int8 kick_load_sbytes8(const void *p) {
    return (kick_int8)_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}
/// out[i] = idx[i] < 0 ? 0 : x[idx[i] & 7] (vpermps, then vblendvps on
/// the index's sign): packed kept values spread back to their lanes.
static inline __attribute__((always_inline, target("avx2"))) kick_float8 kick_expand8(kick_float8 x, kick_int8 idx) {
    __m256 p = _mm256_permutevar8x32_ps((__m256)x, (__m256i)idx);
    return (kick_float8)_mm256_blendv_ps(p, _mm256_setzero_ps(), (__m256)idx);
}
#else
static inline kick_int8 kick_load_sbytes8(const void *p) {
    kick_int8 r;
    for (int i = 0; i < 8; i++) r[i] = ((const int8_t *)p)[i];
    return r;
}
static inline kick_float8 kick_expand8(kick_float8 x, kick_int8 idx) {
    kick_float8 r;
    for (int i = 0; i < 8; i++) r[i] = idx[i] < 0 ? 0.0f : x[idx[i] & 7];
    return r;
}
static inline kick_float16 kick_load_packed16(const void *p, int bits) {
    kick_float16 r;
    for (int h = 0; h < 2; h++) {
        const uint8_t *b = (const uint8_t *)p + h * bits;
        uint32_t w = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        for (int i = 0; i < 8; i++) r[h * 8 + i] = (w >> (i * bits)) & ((1u << bits) - 1);
    }
    return r;
}
static inline kick_float16 kick_load_nibbles16(const void *p) {
    kick_float16 r;
    for (int i = 0; i < 8; i++) { r[i] = ((const uint8_t *)p)[i] & 15; r[i + 8] = ((const uint8_t *)p)[i] >> 4; }
    return r;
}
static inline kick_int8 kick_load_bytes8(const void *p) {
    kick_int8 r;
    for (int i = 0; i < 8; i++) r[i] = ((const uint8_t *)p)[i];
    return r;
}
static inline kick_float8 kick_permute8(kick_float8 x, kick_int8 idx) {
    kick_float8 r;
    for (int i = 0; i < 8; i++) r[i] = x[idx[i] & 7];
    return r;
}
#endif
