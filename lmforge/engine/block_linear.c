/* y = x @ W.T for weights kept as 32-wide blocks of small integer codes, W[n, k] = scale * code + offset
 * (one scale and offset per block), with fp32 arithmetic throughout: each weight is rebuilt in
 * registers exactly as the fp32 tensor holds it, then multiplied and summed like any fp32 matvec.
 *
 * Why: a decode step reads every weight once per token, and on a small CPU that read is the step.
 * A GGUF model's weights are such blocks (Q4_0, Q4_1, Q4_K: 4-bit codes; Q5_0, Q5_1, Q5_K, Q8_0: 8-bit), so reading the
 * codes with an fp32 scale and offset per block (6.5 or 10 bits a weight) instead of the
 * dequantised fp32 tensor (32 bits) gives the same products from a fraction of the bytes.
 * lmforge/engine/block_weights.py finds these forms and checks that they rebuild every weight bit
 * for bit; it compiles this file on first use (AVX2+FMA, OpenMP: the same libgomp torch loaded, so
 * both share one thread pool).
 *
 * The same holds for bf16 weights read in fp32 (a bf16 checkpoint on a CPU without bf16 math):
 * reading their 16 bits instead of 32 gives the same products.
 *
 * Layout: codes[n] holds row n's blocks one after another; a 4-bit block is 16 bytes, byte j with
 * code j in its low nibble and code j+16 in its high nibble; an 8-bit block is 32 bytes; a 16-bit
 * block is 64 (bf16 values). scale, offset: [N, K/32] fp32 (not read for 16-bit blocks).
 * x: [rows, K] fp32, y: [rows, N] fp32, both contiguous. K % 32 == 0.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* scale * code + offset for 8 codes in the low 8 bytes of c: the product is exact (an fp16-sized
 * scale times a code of at most 8 bits), so the fused add rounds once, as the fp32 tensor did. */
static inline __m256 rebuild8(__m128i c, __m256 s, __m256 m) {
    return _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c)), m);
}

/* The block's 32 weights as four vectors of eight, in order. bits 16: the block is 32 bf16 values
 * (a bf16 checkpoint read in fp32), widened exactly by a shift; it has no scale or offset. */
static inline void rebuild_block(const uint8_t *c, int bits, const float *scale, const float *offset, __m256 w[4]) {
    if (bits == 16) {
        for (int i = 0; i < 4; i++)
            w[i] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(c + 16 * i))), 16));
        return;
    }
    __m256 s = _mm256_set1_ps(*scale), m = _mm256_set1_ps(*offset);
    if (bits == 4) {
        const __m128i low = _mm_set1_epi8(0x0F);
        __m128i v = _mm_loadu_si128((const __m128i *)c);
        __m128i lo = _mm_and_si128(v, low), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low);
        w[0] = rebuild8(lo, s, m);
        w[1] = rebuild8(_mm_srli_si128(lo, 8), s, m);
        w[2] = rebuild8(hi, s, m);
        w[3] = rebuild8(_mm_srli_si128(hi, 8), s, m);
    } else {
        __m128i a = _mm_loadu_si128((const __m128i *)c), b = _mm_loadu_si128((const __m128i *)(c + 16));
        w[0] = rebuild8(a, s, m);
        w[1] = rebuild8(_mm_srli_si128(a, 8), s, m);
        w[2] = rebuild8(b, s, m);
        w[3] = rebuild8(_mm_srli_si128(b, 8), s, m);
    }
}

/* rt input rows of x (1..4, a constant where it is called) times NT weight rows rebuilt into w
 * (each K long): a GEMM's register tile, each loaded vector of x and w serving several products.
 * Each output is one fp32 sum over k in order, eight lanes at a time, then across the lanes: the
 * same order for every tile, so among batches of two or more rows a row's result does not depend
 * on which rows share its batch. (A lone row sums in four chains, one_row: faster, another order.) */
#define NT 3
static inline __attribute__((always_inline)) void tile(const float *x, int64_t K, int rt, const float *w,
                                                      float *y, int64_t N, int64_t n0, int nt) {
    __m256 a[4][NT];
    for (int r = 0; r < rt; r++)
        for (int j = 0; j < NT; j++) a[r][j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k += 8) {
        __m256 xr[4];
        for (int r = 0; r < rt; r++) xr[r] = _mm256_loadu_ps(x + r * K + k);
        for (int j = 0; j < NT; j++) {
            __m256 wj = _mm256_load_ps(w + j * K + k);
            for (int r = 0; r < rt; r++) a[r][j] = _mm256_fmadd_ps(xr[r], wj, a[r][j]);
        }
    }
    for (int r = 0; r < rt; r++)
        for (int j = 0; j < nt; j++) y[r * N + n0 + j] = hsum(a[r][j]);
}

/* One input row (a single stream's decode step, bound by reading the codes): each weight row
 * rebuilt in registers and summed in four lane-group chains, whose latencies overlap. */
static void one_row(const float *x, int64_t K, int bits, const uint8_t *codes, const float *scale,
                    const float *offset, int64_t N, float *y, int threads) {
    const int64_t B = K / 32, block_bytes = bits * 4;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t n = 0; n < N; n++) {
        const uint8_t *c = codes + n * B * block_bytes;
        const float *sn = scale + (bits == 16 ? 0 : n * B), *mn = offset + (bits == 16 ? 0 : n * B);
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t b = 0; b < B; b++) {
            __m256 wb[4];
            rebuild_block(c + b * block_bytes, bits, sn + b, mn + b, wb);
            for (int i = 0; i < 4; i++) a[i] = _mm256_fmadd_ps(_mm256_loadu_ps(x + b * 32 + 8 * i), wb[i], a[i]);
        }
        y[n] = hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
    }
}

void block_linear(const float *x, int64_t rows, int64_t K, int bits, const uint8_t *codes,
                  const float *scale, const float *offset, int64_t N, float *y, int threads) {
    if (rows == 1) {
        one_row(x, K, bits, codes, scale, offset, N, y, threads);
        return;
    }
    const int64_t B = K / 32, block_bytes = bits * 4;
    #pragma omp parallel num_threads(threads)
    {
        /* NT weight rows rebuilt once into L1, then dotted with the input rows four at a time */
        float *w = aligned_alloc(32, NT * K * sizeof(float));
        #pragma omp for schedule(static)
        for (int64_t n0 = 0; n0 < N; n0 += NT) {
            const int nt = N - n0 < NT ? (int)(N - n0) : NT;
            for (int j = 0; j < NT; j++) {
                float *wj = w + j * K;
                if (j >= nt) { /* past the last weight row: zeros, their sums are not stored */
                    for (int64_t k = 0; k < K; k += 8) _mm256_store_ps(wj + k, _mm256_setzero_ps());
                    continue;
                }
                const int64_t n = n0 + j;
                const uint8_t *c = codes + n * B * block_bytes;
                const float *sn = scale + (bits == 16 ? 0 : n * B), *mn = offset + (bits == 16 ? 0 : n * B);
                for (int64_t b = 0; b < B; b++) {
                    __m256 wb[4];
                    rebuild_block(c + b * block_bytes, bits, sn + b, mn + b, wb);
                    for (int i = 0; i < 4; i++) _mm256_store_ps(wj + b * 32 + 8 * i, wb[i]);
                }
            }
            int64_t r = 0;
            for (; r + 4 <= rows; r += 4) tile(x + r * K, K, 4, w, y + r * N, N, n0, nt);
            if (rows - r == 3) tile(x + r * K, K, 3, w, y + r * N, N, n0, nt);
            if (rows - r == 2) tile(x + r * K, K, 2, w, y + r * N, N, n0, nt);
            if (rows - r == 1) tile(x + r * K, K, 1, w, y + r * N, N, n0, nt);
        }
        free(w);
    }
}
