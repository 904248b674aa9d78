/* processors/pii.h — finds personal data and secrets inside free text (attribute values, log
 * bodies) for the redaction processor's `pii` masks: e-mail addresses, payment card numbers
 * (Luhn-checked), bearer tokens, API keys of common providers, IPv4 and IPv6 addresses.
 *
 * One lg_pii holds the PCRE2 patterns of the enabled kinds, compiled (and JIT-compiled when
 * the library has a JIT) once at create time; it is read-only afterwards and may be shared
 * by any number of threads. Matching needs a pcre2_match_data, which is per thread: callers
 * pass their own (lg_pii_match_data() makes one big enough).
 *
 * Each kind has a cheap pre-filter over the text (an '@' for e-mail, 13 digits for cards,
 * ...), so text that cannot contain the kind never reaches the regex engine. */
#ifndef LG_PII_H
#define LG_PII_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <stdbool.h>
#include <stddef.h>

#include "../core/common.h"

enum lg_pii_kind {
    LG_PII_EMAIL = 0, /* local@domain.tld */
    LG_PII_CARD,      /* 13-19 digits, optional single spaces/dashes between, Luhn-valid */
    LG_PII_BEARER,    /* the token after "Bearer " (the word itself is kept) */
    LG_PII_API_KEY,   /* OpenAI/Anthropic sk-, AWS AKIA/ASIA, Google AIza, GitHub, Slack, Stripe,
                         Hugging Face */
    LG_PII_IPV4,      /* dotted quad with every octet 0-255 */
    LG_PII_IPV6,      /* full or ::-compressed, checked with inet_pton */
    LG_PII_KIND_COUNT,
};

#define LG_PII_BIT(k) (1u << (k))
#define LG_PII_ALL    ((1u << LG_PII_KIND_COUNT) - 1u)

/** One match: bytes [start, end) of the scanned text. */
struct lg_pii_match {
    size_t start, end;
    int kind; /* enum lg_pii_kind, or a caller's own tag (see lg_pii_ranges_add) */
};

/** A growable list of matches; starts on its inline storage and mallocs only past that.
 *  Zero-initialise (or lg_pii_ranges_init), lg_pii_ranges_free when done. */
struct lg_pii_ranges {
    struct lg_pii_match *v;
    size_t n, cap;
    bool oom; /* an append failed: the list is incomplete, callers must not trust it */
    struct lg_pii_match inline_v[16];
};

struct lg_pii;

/** Compiles the patterns of the kinds in `kinds` (LG_PII_BIT mask). LG_OK or LG_ENOMEM /
 *  LG_EINTERNAL with err set. *out is NULL when kinds is 0. */
int lg_pii_create(unsigned kinds, struct lg_pii **out, struct lg_err *err);
void lg_pii_destroy(struct lg_pii *p);

/** Appends every match of the enabled kinds in s[0..len) to r (unsorted, may overlap; see
 *  lg_pii_ranges_normalise). md must come from lg_pii_match_data() or be at least that big.
 *  Returns the number of matches appended. */
size_t lg_pii_scan(const struct lg_pii *p, const char *s, size_t len, pcre2_match_data *md,
                   struct lg_pii_ranges *r);

/** A match data block large enough for every pattern here (free with pcre2_match_data_free). */
pcre2_match_data *lg_pii_match_data(void);

void lg_pii_ranges_init(struct lg_pii_ranges *r);
void lg_pii_ranges_add(struct lg_pii_ranges *r, size_t start, size_t end, int kind);
/** Sorts by start and merges overlapping ranges (the earlier one's kind wins). */
void lg_pii_ranges_normalise(struct lg_pii_ranges *r);
void lg_pii_ranges_free(struct lg_pii_ranges *r);

/** "email", "credit_card", "bearer_token", "api_key", "ipv4", "ipv6". */
const char *lg_pii_kind_name(enum lg_pii_kind k);
/** The typed mask written in place of a match: "[EMAIL]", "[CARD]", "[TOKEN]", "[API_KEY]",
 *  "[IP]" (both IPv4 and IPv6). */
const char *lg_pii_kind_mask(enum lg_pii_kind k);

/** Luhn check over the digits of s[0..len) (other characters skipped); false with fewer
 *  than 2 digits. */
bool lg_luhn_valid(const char *s, size_t len);

#endif
