/* core/telemetry.c — registry of self-metrics and their Prometheus text rendering.
 *
 * Counters, gauges and histograms live in a list guarded by a mutex only for creation and
 * rendering; updates are relaxed atomic adds, so the hot path never takes a lock. */
#include "telemetry.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_kind { KIND_COUNTER, KIND_GAUGE_FN, KIND_HISTOGRAM };

struct lg_counter {
    struct lg_counter *next;
    enum metric_kind kind;
    char *name;
    char *help;
    char *labels;
    _Atomic uint64_t value;
    double (*fn)(void *);
    void *arg;
    /* histograms: value is the count; sum and one count per bucket (the last is +Inf) */
    size_t nbounds;
    double bounds[LG_HISTOGRAM_MAX_BOUNDS];
    _Atomic uint64_t sum;
    _Atomic uint64_t buckets[LG_HISTOGRAM_MAX_BOUNDS + 1];
};

/* a histogram is a metric of kind KIND_HISTOGRAM; the public type is only for the API */
struct lg_histogram {
    struct lg_counter m;
};

const double lg_histogram_default_bounds[] = {0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000};
const size_t lg_histogram_default_nbounds = sizeof lg_histogram_default_bounds / sizeof lg_histogram_default_bounds[0];

struct lg_telemetry {
    pthread_mutex_t lock;
    struct lg_counter *head; /* in creation order (appended at tail) */
    struct lg_counter **tail;
};

struct lg_telemetry *lg_telemetry_create(void)
{
    struct lg_telemetry *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    t->tail = &t->head;
    return t;
}

void lg_telemetry_destroy(struct lg_telemetry *t)
{
    if (t == NULL)
        return;
    struct lg_counter *c = t->head;
    while (c) {
        struct lg_counter *n = c->next;
        free(c->name);
        free(c->help);
        free(c->labels);
        free(c);
        c = n;
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static struct lg_counter *find_locked(struct lg_telemetry *t, const char *name, const char *labels)
{
    for (struct lg_counter *c = t->head; c; c = c->next)
        if (strcmp(c->name, name) == 0 && strcmp(c->labels, labels) == 0)
            return c;
    return NULL;
}

static struct lg_counter *add_locked(struct lg_telemetry *t, enum metric_kind kind,
                                     const char *name, const char *help, const char *labels)
{
    struct lg_counter *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->kind = kind;
    c->name = strdup(name);
    c->help = strdup(help ? help : "");
    c->labels = strdup(labels ? labels : "");
    if (!c->name || !c->help || !c->labels) {
        free(c->name);
        free(c->help);
        free(c->labels);
        free(c);
        return NULL;
    }
    *t->tail = c;
    t->tail = &c->next;
    return c;
}

struct lg_counter *lg_telemetry_counter(struct lg_telemetry *t, const char *name,
                                        const char *help, const char *labels)
{
    if (t == NULL)
        return NULL;
    if (labels == NULL)
        labels = "";
    pthread_mutex_lock(&t->lock);
    struct lg_counter *c = find_locked(t, name, labels);
    if (c == NULL)
        c = add_locked(t, KIND_COUNTER, name, help, labels);
    pthread_mutex_unlock(&t->lock);
    return c;
}

void lg_counter_add(struct lg_counter *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t lg_counter_value(const struct lg_counter *c)
{
    return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

struct lg_histogram *lg_telemetry_histogram(struct lg_telemetry *t, const char *name,
                                            const char *help, const char *labels,
                                            const double *bounds, size_t nbounds)
{
    if (t == NULL || nbounds > LG_HISTOGRAM_MAX_BOUNDS)
        return NULL;
    if (labels == NULL)
        labels = "";
    pthread_mutex_lock(&t->lock);
    struct lg_counter *c = find_locked(t, name, labels);
    if (c == NULL && (c = add_locked(t, KIND_HISTOGRAM, name, help, labels)) != NULL) {
        c->nbounds = nbounds;
        memcpy(c->bounds, bounds, nbounds * sizeof *bounds);
    }
    pthread_mutex_unlock(&t->lock);
    return c != NULL && c->kind == KIND_HISTOGRAM ? (struct lg_histogram *)c : NULL;
}

void lg_histogram_observe(struct lg_histogram *h, uint64_t v)
{
    if (h == NULL)
        return;
    struct lg_counter *c = &h->m;
    size_t i = 0;
    while (i < c->nbounds && (double)v > c->bounds[i])
        i++;
    atomic_fetch_add_explicit(&c->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->sum, v, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
}

uint64_t lg_histogram_count(const struct lg_histogram *h) { return h ? lg_counter_value(&h->m) : 0; }

int lg_telemetry_gauge_fn(struct lg_telemetry *t, const char *name, const char *help,
                          const char *labels, double (*fn)(void *arg), void *arg)
{
    if (t == NULL)
        return -1;
    pthread_mutex_lock(&t->lock);
    struct lg_counter *c = find_locked(t, name, labels ? labels : "");
    if (c == NULL)
        c = add_locked(t, KIND_GAUGE_FN, name, help, labels);
    if (c != NULL) {
        c->kind = KIND_GAUGE_FN;
        c->fn = fn;
        c->arg = arg;
    }
    pthread_mutex_unlock(&t->lock);
    return c ? 0 : -1;
}

void lg_telemetry_gauge_forget(struct lg_telemetry *t, void *arg)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->lock);
    for (struct lg_counter *c = t->head; c; c = c->next)
        if (c->kind == KIND_GAUGE_FN && c->arg == arg) {
            c->fn = NULL;
            c->arg = NULL;
        }
    pthread_mutex_unlock(&t->lock);
}

struct outbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void out_printf(struct outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct outbuf *o, const char *fmt, ...)
{
    if (o->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = (o->cap + (size_t)n + 1) * 2;
        char *np = realloc(o->p, ncap);
        if (np == NULL) {
            o->oom = true;
            return;
        }
        o->p = np;
        o->cap = ncap;
    }
}

/* Cumulative buckets as Prometheus wants them; the count is the sum of the buckets read
 * (not the separate counter) so that the +Inf bucket always equals _count. */
static void render_histogram(struct outbuf *o, const struct lg_counter *s)
{
    const char *sep = s->labels[0] ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i <= s->nbounds; i++) {
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        if (i < s->nbounds)
            out_printf(o, "%s_bucket{%s%sle=\"%.17g\"} %llu\n", s->name, s->labels, sep, s->bounds[i],
                       (unsigned long long)cum);
        else
            out_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name, s->labels, sep,
                       (unsigned long long)cum);
    }
    const char *open = s->labels[0] ? "{" : "";
    const char *close = s->labels[0] ? "}" : "";
    out_printf(o, "%s_sum%s%s%s %llu\n", s->name, open, s->labels, close,
               (unsigned long long)atomic_load_explicit(&s->sum, memory_order_relaxed));
    out_printf(o, "%s_count%s%s%s %llu\n", s->name, open, s->labels, close, (unsigned long long)cum);
}

char *lg_telemetry_render(struct lg_telemetry *t, size_t *len)
{
    struct outbuf o = {.p = malloc(4096), .cap = 4096};
    if (o.p == NULL)
        return NULL;
    o.p[0] = '\0';
    pthread_mutex_lock(&t->lock);
    /* Prometheus wants all samples of one family together, after one HELP/TYPE pair. */
    for (struct lg_counter *c = t->head; c; c = c->next) {
        bool first = true;
        for (struct lg_counter *p = t->head; p != c; p = p->next)
            if (strcmp(p->name, c->name) == 0) {
                first = false;
                break;
            }
        if (!first)
            continue;
        static const char *const type_names[] = {"counter", "gauge", "histogram"};
        out_printf(&o, "# HELP %s %s\n# TYPE %s %s\n", c->name, c->help, c->name,
                   type_names[c->kind]);
        for (struct lg_counter *s = c; s; s = s->next) {
            if (strcmp(s->name, c->name) != 0)
                continue;
            const char *open = s->labels[0] ? "{" : "";
            const char *close = s->labels[0] ? "}" : "";
            if (s->kind == KIND_HISTOGRAM) {
                render_histogram(&o, s);
                continue;
            }
            if (s->kind == KIND_COUNTER)
                out_printf(&o, "%s%s%s%s %llu\n", s->name, open, s->labels, close,
                           (unsigned long long)lg_counter_value(s));
            else
                out_printf(&o, "%s%s%s%s %.17g\n", s->name, open, s->labels, close,
                           s->fn ? s->fn(s->arg) : 0.0);
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    if (len)
        *len = o.len;
    return o.p;
}
