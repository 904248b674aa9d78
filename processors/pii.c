/* processors/pii.c — the PII / secret patterns behind the redaction processor's `pii` masks
 * (see pii.h), their pre-filters, the Luhn and inet_pton checks that weed out look-alikes,
 * and the small range list the processor uses to splice masks into a value. */
#include "pii.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Patterns work on bytes (no PCRE2_UTF): every delimiter they look at is ASCII, so UTF-8
 * text around a match is left alone, and no UTF validity check is paid per value. */

#define H     "[0-9A-Fa-f]{1,4}"
#define OCTET "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#define IPV4  "(?:" OCTET "\\.){3}" OCTET

static const char *const patterns[LG_PII_KIND_COUNT] = {
    /* e-mail: the whole local part (the look-behind stops a match from starting inside it),
     * then labels and an alphabetic TLD; "user@localhost" has no TLD and is not matched */
    [LG_PII_EMAIL] = "(?<![A-Za-z0-9._%+\\-])[A-Za-z0-9._%+\\-]{1,64}@"
                     "(?:[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}"
                     "(?![A-Za-z0-9\\-])",
    /* card: 13-19 digits, single space or dash between any two, not part of a longer digit
     * run; the Luhn check happens in C */
    [LG_PII_CARD] = "(?<![0-9])[0-9](?:[ \\-]?[0-9]){12,18}(?![0-9])",
    /* bearer: only the credential after the scheme (\K), 8+ token68 characters */
    [LG_PII_BEARER] = "(?i)\\bbearer\\s+\\K[A-Za-z0-9\\-._~+/]{8,}=*",
    /* provider keys with a recognisable prefix */
    [LG_PII_API_KEY] = "\\b(?:sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_\\-]{20,}"
                       "|(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"
                       "|AIza[0-9A-Za-z_\\-]{35}"
                       "|gh[pousr]_[A-Za-z0-9]{36,}"
                       "|github_pat_[A-Za-z0-9_]{22,}"
                       "|xox[abposr]-[A-Za-z0-9\\-]{10,}"
                       "|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
                       "|hf_[A-Za-z0-9]{30,})",
    /* IPv4: not glued to a word or another dotted number (so 1.2.3.4.5 and v1.2.3.4 are not
     * addresses; 1.2.3 has too few parts) */
    [LG_PII_IPV4] = "(?<![A-Za-z0-9_.])" IPV4 "(?![A-Za-z0-9_]|\\.[0-9A-Za-z])",
    /* IPv6: full and compressed forms, IPv4-mapped; a bare "::" is not matched. Candidates
     * are confirmed with inet_pton. */
    [LG_PII_IPV6] = "(?<![A-Za-z0-9_:.])(?:"
                    "(?:" H ":){7}" H "|(?:" H ":){1,6}:" H "|(?:" H ":){1,5}(?::" H "){1,2}"
                    "|(?:" H ":){1,4}(?::" H "){1,3}"
                    "|(?:" H ":){1,3}(?::" H "){1,4}"
                    "|(?:" H ":){1,2}(?::" H "){1,5}"
                    "|" H ":(?::" H "){1,6}"
                    "|::(?:[Ff]{4}(?::0{1,4})?:)?" IPV4 "|:(?::" H "){1,7}"
                    "|(?:" H ":){1,7}:"
                    ")(?![A-Za-z0-9_:]|\\.[0-9])",
};

static const char *const kind_names[LG_PII_KIND_COUNT] = {
    "email", "credit_card", "bearer_token", "api_key", "ipv4", "ipv6",
};
static const char *const kind_masks[LG_PII_KIND_COUNT] = {
    "[EMAIL]", "[CARD]", "[TOKEN]", "[API_KEY]", "[IP]", "[IP]",
};

struct lg_pii {
    pcre2_code *re[LG_PII_KIND_COUNT]; /* NULL for kinds not enabled */
};

const char *lg_pii_kind_name(enum lg_pii_kind k)
{
    return (unsigned)k < LG_PII_KIND_COUNT ? kind_names[k] : "unknown";
}

const char *lg_pii_kind_mask(enum lg_pii_kind k)
{
    return (unsigned)k < LG_PII_KIND_COUNT ? kind_masks[k] : "****";
}

int lg_pii_create(unsigned kinds, struct lg_pii **out, struct lg_err *err)
{
    *out = NULL;
    if ((kinds & LG_PII_ALL) == 0)
        return LG_OK;
    struct lg_pii *p = calloc(1, sizeof *p);
    if (p == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (int k = 0; k < LG_PII_KIND_COUNT; k++) {
        if (!(kinds & LG_PII_BIT(k)))
            continue;
        int ec;
        PCRE2_SIZE eo;
        p->re[k] = pcre2_compile((PCRE2_SPTR)patterns[k], PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
        if (p->re[k] == NULL) {
            /* our own patterns: a failure here is a bug, not a user error */
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            lg_pii_destroy(p);
            return lg_err_set(err, LG_EINTERNAL, "pii pattern %s: %s at offset %zu", kind_names[k],
                              (const char *)msg, (size_t)eo);
        }
        /* the JIT is optional: without it pcre2_match interprets the same pattern */
        (void)pcre2_jit_compile(p->re[k], PCRE2_JIT_COMPLETE);
    }
    *out = p;
    return LG_OK;
}

void lg_pii_destroy(struct lg_pii *p)
{
    if (p == NULL)
        return;
    for (int k = 0; k < LG_PII_KIND_COUNT; k++)
        pcre2_code_free(p->re[k]);
    free(p);
}

pcre2_match_data *lg_pii_match_data(void)
{
    /* the patterns capture nothing; a few pairs leave room for users' blocked_values groups */
    return pcre2_match_data_create(4, NULL);
}

bool lg_luhn_valid(const char *s, size_t len)
{
    int sum = 0, ndig = 0;
    bool dbl = false;
    for (size_t i = len; i-- > 0;) {
        if (s[i] < '0' || s[i] > '9')
            continue;
        int d = s[i] - '0';
        if (dbl) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        dbl = !dbl;
        ndig++;
    }
    return ndig >= 2 && sum % 10 == 0;
}

static bool ipv6_valid(const char *s, size_t len)
{
    char buf[64];
    struct in6_addr a;
    if (len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

static size_t scan_one(const pcre2_code *re, int kind, const char *s, size_t len,
                       pcre2_match_data *md, struct lg_pii_ranges *r)
{
    size_t found = 0, off = 0;
    while (off < len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, off, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            /* a match or depth limit: what is left cannot be searched, so it is masked
             * whole (failing closed) rather than forwarded unchecked */
            lg_pii_ranges_add(r, off, len, kind);
            found++;
            break;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t st = ov[0], en = ov[1];
        if (en <= st) {
            off = (en > off ? en : off) + 1;
            continue;
        }
        off = en;
        if (kind == LG_PII_CARD && !lg_luhn_valid(s + st, en - st)) {
            /* a card followed by more digit groups (a CVV, an amount): try the shorter runs
             * that end at a separator, longest first, down to 13 digits */
            size_t best = 0;
            for (size_t e = en; e > st && best == 0; e--) {
                if (e < en && (s[e] == ' ' || s[e] == '-')) {
                    size_t nd = 0;
                    for (size_t i = st; i < e; i++)
                        nd += s[i] >= '0' && s[i] <= '9';
                    if (nd >= 13 && lg_luhn_valid(s + st, e - st))
                        best = e;
                }
            }
            if (best == 0)
                continue;
            en = best;
        }
        if (kind == LG_PII_IPV6 && !ipv6_valid(s + st, en - st))
            continue;
        lg_pii_ranges_add(r, st, en, kind);
        found++;
    }
    return found;
}

size_t lg_pii_scan(const struct lg_pii *p, const char *s, size_t len, pcre2_match_data *md,
                   struct lg_pii_ranges *r)
{
    if (p == NULL || len == 0)
        return 0;
    /* pre-filter: one pass counting the characters each kind cannot do without, and looking
     * (through a window of the last bytes) for the fixed text every bearer token and API key
     * pattern contains: "earer" in any case, "sk-", "sk_", "rk_", "hf_", "gh?_", "pat_",
     * "ox?-", "AKIA", "ASIA", "ABIA", "ACCA", "AIza". A miss here is a proof of no match. */
    size_t at = 0, digits = 0, dots = 0, colons = 0;
    bool bearer = false, key = false;
    uint32_t w = 0;  /* last 4 bytes as written */
    uint64_t wl = 0; /* last 5 bytes, ASCII letters folded to lower case */
#define W3(a, b, c)    (((uint32_t)(a) << 16) | ((uint32_t)(b) << 8) | (uint32_t)(c))
#define W4(a, b, c, d) (((uint32_t)(a) << 24) | W3(b, c, d))
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        w = (w << 8) | c;
        wl = (wl << 8) | (c | 0x20u);
        if (c >= '0' && c <= '9') {
            digits++;
            continue;
        }
        switch (c) {
        case '@': at++; break;
        case '.': dots++; break;
        case ':': colons++; break;
        case '-':
            key = key || (w & 0xFFFFFFu) == W3('s', 'k', '-') ||
                  (w & 0xFFFF00FFu) == W4('o', 'x', 0, '-');
            break;
        case '_':
            key = key || (w & 0xFFFFFFu) == W3('s', 'k', '_') ||
                  (w & 0xFFFFFFu) == W3('r', 'k', '_') || (w & 0xFFFFFFu) == W3('h', 'f', '_') ||
                  (w & 0xFFFF00FFu) == W4('g', 'h', 0, '_') || w == W4('p', 'a', 't', '_');
            break;
        case 'A':
            key = key || w == W4('A', 'K', 'I', 'A') || w == W4('A', 'S', 'I', 'A') ||
                  w == W4('A', 'B', 'I', 'A') || w == W4('A', 'C', 'C', 'A');
            break;
        case 'a': key = key || w == W4('A', 'I', 'z', 'a'); break;
        case 'r':
        case 'R':
            bearer = bearer ||
                     (wl & 0xFFFFFFFFFFull) == (((uint64_t)'e' << 32) | W4('a', 'r', 'e', 'r'));
            break;
        default: break;
        }
    }
#undef W3
#undef W4
    size_t found = 0;
    if (p->re[LG_PII_EMAIL] && at && dots)
        found += scan_one(p->re[LG_PII_EMAIL], LG_PII_EMAIL, s, len, md, r);
    if (p->re[LG_PII_CARD] && digits >= 13)
        found += scan_one(p->re[LG_PII_CARD], LG_PII_CARD, s, len, md, r);
    if (p->re[LG_PII_BEARER] && bearer)
        found += scan_one(p->re[LG_PII_BEARER], LG_PII_BEARER, s, len, md, r);
    if (p->re[LG_PII_API_KEY] && key)
        found += scan_one(p->re[LG_PII_API_KEY], LG_PII_API_KEY, s, len, md, r);
    if (p->re[LG_PII_IPV4] && digits >= 4 && dots >= 3)
        found += scan_one(p->re[LG_PII_IPV4], LG_PII_IPV4, s, len, md, r);
    if (p->re[LG_PII_IPV6] && colons >= 2)
        found += scan_one(p->re[LG_PII_IPV6], LG_PII_IPV6, s, len, md, r);
    return found;
}

/* ---- ranges ---- */

void lg_pii_ranges_init(struct lg_pii_ranges *r)
{
    r->v = r->inline_v;
    r->n = 0;
    r->cap = LG_ARRAY_LEN(r->inline_v);
    r->oom = false;
}

void lg_pii_ranges_add(struct lg_pii_ranges *r, size_t start, size_t end, int kind)
{
    if (r->v == NULL)
        lg_pii_ranges_init(r);
    if (r->n == r->cap) {
        size_t nc = r->cap * 2;
        struct lg_pii_match *nv =
            r->v == r->inline_v ? malloc(nc * sizeof *nv) : realloc(r->v, nc * sizeof *nv);
        if (nv == NULL) {
            r->oom = true;
            return;
        }
        if (r->v == r->inline_v)
            memcpy(nv, r->inline_v, r->n * sizeof *nv);
        r->v = nv;
        r->cap = nc;
    }
    r->v[r->n++] = (struct lg_pii_match){start, end, kind};
}

static int cmp_match(const void *a, const void *b)
{
    const struct lg_pii_match *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end > y->end ? -1 : (x->end < y->end);
}

void lg_pii_ranges_normalise(struct lg_pii_ranges *r)
{
    if (r->v == NULL || r->n < 2)
        return;
    qsort(r->v, r->n, sizeof *r->v, cmp_match);
    size_t o = 0;
    for (size_t i = 1; i < r->n; i++) {
        if (r->v[i].start < r->v[o].end) {
            if (r->v[i].end > r->v[o].end)
                r->v[o].end = r->v[i].end;
        } else {
            r->v[++o] = r->v[i];
        }
    }
    r->n = o + 1;
}

void lg_pii_ranges_free(struct lg_pii_ranges *r)
{
    if (r->v && r->v != r->inline_v)
        free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}
