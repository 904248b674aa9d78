/* processors/probabilistic_sampler.h — the arithmetic of the `probabilistic_sampler`
 * processor (processors/probabilistic_sampler.c), exposed so tests can check it against
 * values computed independently.
 *
 * Two families of sampling, as in the Collector's probabilisticsamplerprocessor:
 *   - hash_seed: FNV-1a (32 bit) over the 4 seed bytes (little endian) then the trace ID
 *     (or a log attribute); the low 14 bits are the bucket, kept when bucket < rate where
 *     rate = trunc(float32(percent) * float32(16384/100)). The hash is also spread into a
 *     56-bit randomness value so that the decision can be written as an OTel threshold
 *     (ot=th:...;rv:...) exactly as the Collector writes it.
 *   - proportional / equalizing: OTel consistent probability sampling (OTEP 235): the
 *     randomness is the explicit rv or the trace ID's last 7 bytes, the threshold a 56-bit
 *     rejection value, kept when randomness >= threshold, written as tracestate ot=th:<hex>.
 *
 * Every function here is pure and thread-safe. */
#ifndef LG_PROBABILISTIC_SAMPLER_H
#define LG_PROBABILISTIC_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2^56: the number of distinct 56-bit randomness values; also the "never sample" threshold. */
#define LG_PS_MAX_ADJUSTED_COUNT ((uint64_t)1 << 56)
/* Hex digits of a full threshold / randomness value. */
#define LG_PS_HEX_DIGITS 14
/* Buffer size that holds any lg_ps_tvalue() / randomness text with its NUL. */
#define LG_PS_HEX_BUF 16

/** FNV-1a 32 over the seed's 4 bytes (least significant first) followed by data. */
uint32_t lg_ps_fnv1a32(uint32_t seed, const uint8_t *data, size_t len);

/** The 56-bit randomness the hash_seed mode derives from a hash (see the file comment):
 *  most significant 14 bits 16383 - (h & 0x3fff), then the upper 18 hash bits mixed into 28,
 *  then the 14 bucket bits. */
uint64_t lg_ps_hash_randomness(uint32_t seed, const uint8_t *data, size_t len);

/** The hash_seed mode's acceptance rate in buckets of 16384 for a percentage in [0, 100],
 *  computed in float32 as the Collector does (so e.g. 100 gives 16384). */
uint32_t lg_ps_hash_scaled_rate(float percent);

/** W3C randomness of a 16-byte trace ID: its last 7 bytes, big endian. */
uint64_t lg_ps_trace_id_randomness(const uint8_t tid[16]);

/** The rejection threshold for probability p with `precision` significant hex digits
 *  (1..14), rounded to nearest as the Collector's ProbabilityToThresholdWithPrecision.
 *  Returns 0 with *th set; -1 when p is outside [2^-56, 1]; -2 when the precision needed
 *  for p's leading hex digits exceeds 14 (*th is then 0, "always", as the Collector
 *  falls back). A result of 2^56 or more means "never". */
int lg_ps_prob_to_threshold(double p, int precision, uint64_t *th);

/** Probability of a threshold: (2^56 - th) / 2^56. */
double lg_ps_threshold_prob(uint64_t th);

/** The `th` text of a threshold: "0" for 0, else 14 hex digits with trailing zeros
 *  removed. buf holds LG_PS_HEX_BUF bytes. */
void lg_ps_tvalue(uint64_t th, char *buf);
/** Parses a `th` value (1..14 hex digits, trailing zeros implied). 0, or -1 if invalid. */
int lg_ps_tvalue_parse(const char *s, size_t len, uint64_t *th);
/** Parses an `rv` value (exactly 14 hex digits). 0, or -1 if invalid. */
int lg_ps_rvalue_parse(const char *s, size_t len, uint64_t *rv);

/** The OTel sampling values of a tracestate's `ot` entry. */
struct lg_ps_otvals {
    bool has_rv, has_th;
    uint64_t rv, th;
};

/** Parses a W3C tracestate (NULL or "" = empty), validating it as the Collector does (W3C
 *  list syntax, at most 32 members and 1024 bytes, the `ot` value's `key:value;...` syntax
 *  with at most 256 bytes, rv of exactly 14 hex digits, th of 1..14), and returns its rv / th
 *  in *ot. 0, or -1 when invalid. */
int lg_ps_tracestate_parse(const char *in, struct lg_ps_otvals *ot);
/** Writes `in` (which must parse) again with the `ot` entry first carrying th and rv as
 *  given in *ot (th first), then the ot entry's other sub-keys and the other vendors'
 *  entries in their order; blank members and optional whitespace are dropped. Returns the
 *  length written (NUL-terminated), -1 when `in` is invalid, -2 when cap is too small. */
int lg_ps_tracestate_rewrite(const char *in, const struct lg_ps_otvals *ot, char *out, size_t cap);

#endif
