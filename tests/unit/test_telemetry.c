/* tests/unit/test_telemetry.c — the self-metrics registry's Prometheus text: counters,
 * gauges and histograms (cumulative le buckets, +Inf equal to _count, _sum). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/telemetry.h"

static double half(void *arg) { return *(double *)arg / 2; }

static void test_counter_gauge_text(void **state)
{
    (void)state;
    struct lg_telemetry *t = lg_telemetry_create();
    struct lg_counter *a = lg_telemetry_counter(t, "x_total", "Things.", "k=\"1\"");
    struct lg_counter *b = lg_telemetry_counter(t, "y", "Other.", "");
    struct lg_counter *a2 = lg_telemetry_counter(t, "x_total", "Things.", "k=\"2\"");
    assert_ptr_equal(lg_telemetry_counter(t, "x_total", "Things.", "k=\"1\""), a);
    lg_counter_add(a, 3);
    lg_counter_add(a2, 4);
    lg_counter_add(b, 1);
    lg_counter_add(NULL, 5);
    double v = 9;
    assert_int_equal(lg_telemetry_gauge_fn(t, "g", "A gauge.", "", half, &v), 0);
    size_t len;
    char *text = lg_telemetry_render(t, &len);
    assert_string_equal(text, "# HELP x_total Things.\n# TYPE x_total counter\n"
                              "x_total{k=\"1\"} 3\nx_total{k=\"2\"} 4\n"
                              "# HELP y Other.\n# TYPE y counter\ny 1\n"
                              "# HELP g A gauge.\n# TYPE g gauge\ng 4.5\n");
    assert_int_equal(len, strlen(text));
    free(text);
    lg_telemetry_destroy(t);
}

static void test_histogram_text(void **state)
{
    (void)state;
    struct lg_telemetry *t = lg_telemetry_create();
    static const double bounds[] = {1, 5, 10};
    struct lg_histogram *h = lg_telemetry_histogram(t, "lat", "Latency.", "p=\"a\"", bounds, 3);
    assert_non_null(h);
    /* the same name and labels give the same histogram */
    assert_ptr_equal(lg_telemetry_histogram(t, "lat", "Latency.", "p=\"a\"", bounds, 3), h);
    /* le is "less than or equal": 1 goes in le=1, 5 in le=5, 11 only in +Inf */
    uint64_t obs[] = {0, 1, 2, 5, 6, 10, 11, 1000};
    for (size_t i = 0; i < LG_ARRAY_LEN(obs); i++)
        lg_histogram_observe(h, obs[i]);
    lg_histogram_observe(NULL, 7);
    assert_int_equal(lg_histogram_count(h), 8);
    struct lg_histogram *e = lg_telemetry_histogram(t, "empty", "None yet.", "", bounds, 3);
    assert_non_null(e);
    char *text = lg_telemetry_render(t, NULL);
    assert_string_equal(text, "# HELP lat Latency.\n# TYPE lat histogram\n"
                              "lat_bucket{p=\"a\",le=\"1\"} 2\n"
                              "lat_bucket{p=\"a\",le=\"5\"} 4\n"
                              "lat_bucket{p=\"a\",le=\"10\"} 6\n"
                              "lat_bucket{p=\"a\",le=\"+Inf\"} 8\n"
                              "lat_sum{p=\"a\"} 1035\n"
                              "lat_count{p=\"a\"} 8\n"
                              "# HELP empty None yet.\n# TYPE empty histogram\n"
                              "empty_bucket{le=\"1\"} 0\nempty_bucket{le=\"5\"} 0\n"
                              "empty_bucket{le=\"10\"} 0\nempty_bucket{le=\"+Inf\"} 0\n"
                              "empty_sum 0\nempty_count 0\n");
    free(text);
    /* too many bounds, or a name already used by a counter: refused, and observing the
     * NULL it returns is harmless */
    double many[LG_HISTOGRAM_MAX_BOUNDS + 1] = {0};
    assert_null(lg_telemetry_histogram(t, "big", "", "", many, LG_HISTOGRAM_MAX_BOUNDS + 1));
    lg_telemetry_counter(t, "c", "", "");
    assert_null(lg_telemetry_histogram(t, "c", "", "", bounds, 3));
    /* the default bounds are the OTel SDK's */
    assert_int_equal(lg_histogram_default_nbounds, 15);
    assert_true(lg_histogram_default_bounds[0] == 0 && lg_histogram_default_bounds[14] == 10000);
    lg_telemetry_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge_text),
        cmocka_unit_test(test_histogram_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
