/*
 * Tests of sb_serve_parse (src/core/config.c), the flag parser shared by `switchboard serve`
 * and sb-testserver: defaults, every flag in both "--flag value" and "--flag=value" form,
 * unknown flags, missing values, malformed and out-of-range numbers, and the TLS pairing rule.
 */
#include <string.h>

#include "core/config.h"
#include "sb_test.h"
#include "switchboard/error.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Parses a NULL-free argv array; err receives the message. */
static int parse(int argc, const char *const *argv, sb_serve_opts_t *o, char *err, size_t cap) {
  /* sb_serve_parse takes char ** like main's argv; it does not modify the strings. */
  err[0] = '\0';
  return sb_serve_parse(argc, (char **)argv, o, err, cap);
}

TEST(config_defaults) {
  sb_serve_opts_t o;
  memset(&o, 0x5a, sizeof o); /* the parser must initialise everything itself */
  char err[128];
  CHECK_EQ_INT(parse(0, NULL, &o, err, sizeof err), 0);
  CHECK_EQ_STR(o.server.http_addr, "127.0.0.1:8080");
  CHECK_EQ_STR(o.data_dir, "./data");
  CHECK_EQ_INT(o.disk_reserve, 64ull << 20);
  CHECK_EQ_INT(o.log_level, SB_LOG_INFO);
  /* Zero means "use the library default" for every numeric field. */
  CHECK_EQ_INT(o.server.threads, 0);
  CHECK_EQ_INT(o.server.max_header_bytes, 0);
  CHECK_EQ_INT(o.server.max_body_bytes, 0);
  CHECK_EQ_INT(o.server.header_timeout_ms, 0);
  CHECK_EQ_INT(o.server.idle_timeout_ms, 0);
  CHECK_EQ_INT(o.server.max_connections, 0);
  CHECK_EQ_INT(o.server.h2_max_streams, 0);
  CHECK_EQ_INT(o.server.h2_max_header_list, 0);
  CHECK_EQ_INT(o.server.shutdown_grace_ms, 0);
  CHECK(o.server.tls_cert == NULL);
  CHECK(o.server.tls_key == NULL);
  CHECK_EQ_STR(o.sqs_region, "us-east-1");
  CHECK_EQ_STR(o.sqs_account, "000000000000");
  CHECK(o.sqs_credentials == NULL); /* dev mode: signatures are not verified */
}

TEST(config_all_flags_separate_values) {
  const char *argv[] = {"--http",
                        "127.0.0.1:0",
                        "--data",
                        "/tmp/sbdata",
                        "--threads",
                        "3",
                        "--log-level",
                        "debug",
                        "--tls-cert",
                        "cert.pem",
                        "--tls-key",
                        "key.pem",
                        "--max-header-bytes",
                        "4096",
                        "--max-body-bytes",
                        "1048576",
                        "--header-timeout-ms",
                        "250",
                        "--idle-timeout-ms",
                        "1500",
                        "--max-connections",
                        "10",
                        "--h2-max-streams",
                        "7",
                        "--h2-max-header-list",
                        "2048",
                        "--shutdown-grace-ms",
                        "300"};
  sb_serve_opts_t o;
  char err[128];
  CHECK_EQ_INT(parse(ARGC(argv), argv, &o, err, sizeof err), 0);
  CHECK_EQ_STR(err, "");
  CHECK_EQ_STR(o.server.http_addr, "127.0.0.1:0");
  CHECK_EQ_STR(o.data_dir, "/tmp/sbdata");
  CHECK_EQ_INT(o.server.threads, 3);
  CHECK_EQ_INT(o.log_level, SB_LOG_DEBUG);
  CHECK_EQ_STR(o.server.tls_cert, "cert.pem");
  CHECK_EQ_STR(o.server.tls_key, "key.pem");
  CHECK_EQ_INT(o.server.max_header_bytes, 4096);
  CHECK_EQ_INT(o.server.max_body_bytes, 1048576);
  CHECK_EQ_INT(o.server.header_timeout_ms, 250);
  CHECK_EQ_INT(o.server.idle_timeout_ms, 1500);
  CHECK_EQ_INT(o.server.max_connections, 10);
  CHECK_EQ_INT(o.server.h2_max_streams, 7);
  CHECK_EQ_INT(o.server.h2_max_header_list, 2048);
  CHECK_EQ_INT(o.server.shutdown_grace_ms, 300);
  /* Strings are borrowed from argv, not copied. */
  CHECK(o.server.http_addr == argv[1]);
}

TEST(config_flag_equals_value_form) {
  const char *argv[] = {"--http=[::1]:9000",
                        "--threads=2",
                        "--log-level=warn",
                        "--max-body-bytes=0",
                        "--data=/d=x",
                        "--idle-timeout-ms",
                        "5"};
  sb_serve_opts_t o;
  char err[128];
  CHECK_EQ_INT(parse(ARGC(argv), argv, &o, err, sizeof err), 0);
  CHECK_EQ_STR(o.server.http_addr, "[::1]:9000");
  CHECK_EQ_INT(o.server.threads, 2);
  CHECK_EQ_INT(o.log_level, SB_LOG_WARN);
  CHECK_EQ_INT(o.server.max_body_bytes, 0);
  /* Only the first '=' separates the flag from its value. */
  CHECK_EQ_STR(o.data_dir, "/d=x");
  /* Both forms mix on one command line. */
  CHECK_EQ_INT(o.server.idle_timeout_ms, 5);
}

TEST(config_last_flag_wins) {
  const char *argv[] = {"--threads", "1", "--threads=4"};
  sb_serve_opts_t o;
  char err[128];
  CHECK_EQ_INT(parse(ARGC(argv), argv, &o, err, sizeof err), 0);
  CHECK_EQ_INT(o.server.threads, 4);
}

TEST(config_disk_reserve) {
  const char *ok[] = {"--disk-reserve-mb", "0"};
  const char *big[] = {"--disk-reserve-mb=2048"};
  const char *bad[] = {"--disk-reserve-mb", "-1"};
  sb_serve_opts_t o;
  char err[128];
  CHECK_EQ_INT(parse(2, ok, &o, err, sizeof err), 0);
  CHECK_EQ_INT(o.disk_reserve, 0);
  CHECK_EQ_INT(parse(1, big, &o, err, sizeof err), 0);
  CHECK_EQ_INT(o.disk_reserve, 2048ull << 20);
  CHECK_EQ_INT(parse(2, bad, &o, err, sizeof err), SB_EINVAL);
}

TEST(config_unknown_flag) {
  sb_serve_opts_t o;
  char err[128];
  const char *a1[] = {"--bogus", "1"};
  CHECK_EQ_INT(parse(ARGC(a1), a1, &o, err, sizeof err), SB_EINVAL);
  CHECK(strstr(err, "--bogus") != NULL);
  const char *a2[] = {"--http", "127.0.0.1:0", "--nope=3"};
  CHECK_EQ_INT(parse(ARGC(a2), a2, &o, err, sizeof err), SB_EINVAL);
  CHECK(strstr(err, "--nope") != NULL);
  /* Positional words are not flags. */
  const char *a3[] = {"serve", "x"};
  CHECK_EQ_INT(parse(ARGC(a3), a3, &o, err, sizeof err), SB_EINVAL);
  CHECK(err[0] != '\0');
  /* Prefixes of real flags do not match them. */
  const char *a4[] = {"--thread", "2"};
  CHECK_EQ_INT(parse(ARGC(a4), a4, &o, err, sizeof err), SB_EINVAL);
}

TEST(config_missing_value) {
  sb_serve_opts_t o;
  char err[128];
  const char *a1[] = {"--threads"};
  CHECK_EQ_INT(parse(ARGC(a1), a1, &o, err, sizeof err), SB_EINVAL);
  CHECK(strstr(err, "--threads") != NULL);
  const char *a2[] = {"--http", "127.0.0.1:0", "--tls-cert"};
  CHECK_EQ_INT(parse(ARGC(a2), a2, &o, err, sizeof err), SB_EINVAL);
  CHECK(err[0] != '\0');
}

/* Expects `flag value` and `flag=value` both to be rejected with a message naming the flag. */
static void expect_bad(const char *flag, const char *value, int line) {
  sb_serve_opts_t o;
  char err[128];
  const char *argv[] = {flag, value};
  int rc = parse(2, argv, &o, err, sizeof err);
  sb_test_record(rc == SB_EINVAL, __FILE__, line, "%s %s accepted (rc %d)", flag, value, rc);
  sb_test_record(strstr(err, flag) != NULL, __FILE__, line, "error message [%s] lacks %s", err,
                 flag);
  char joined[128];
  snprintf(joined, sizeof joined, "%s=%s", flag, value);
  const char *argv2[] = {joined};
  rc = parse(1, argv2, &o, err, sizeof err);
  sb_test_record(rc == SB_EINVAL, __FILE__, line, "%s accepted (rc %d)", joined, rc);
}

TEST(config_bad_numbers) {
  expect_bad("--threads", "abc", __LINE__);
  expect_bad("--threads", "", __LINE__);
  expect_bad("--threads", "-1", __LINE__);
  expect_bad("--threads", "2x", __LINE__);
  expect_bad("--threads", "257", __LINE__);
  expect_bad("--max-header-bytes", "99999999999999999999999", __LINE__);
  expect_bad("--max-header-bytes", "16777217", __LINE__);
  expect_bad("--max-body-bytes", "18446744073709551615", __LINE__);
  expect_bad("--header-timeout-ms", "4294967296", __LINE__);
  expect_bad("--idle-timeout-ms", "1.5", __LINE__);
  expect_bad("--max-connections", "0x10", __LINE__);
  expect_bad("--h2-max-streams", "1048577", __LINE__);
  expect_bad("--shutdown-grace-ms", "-0", __LINE__);
  expect_bad("--log-level", "loud", __LINE__);
  expect_bad("--json-unknown-fields", "maybe", __LINE__);
}

TEST(config_json_unknown_fields) {
  const char *argv[] = {"--json-unknown-fields", "ignore", "--json-unknown-fields=reject",
                        "--json-unknown-fields=ignore"};
  sb_serve_opts_t o;
  char err[128];
  CHECK_EQ_INT(parse(0, argv, &o, err, sizeof err), 0);
  CHECK_EQ_INT(o.json_ignore_unknown, 0); /* the default rejects */
  CHECK_EQ_INT(parse(2, argv, &o, err, sizeof err), 0);
  CHECK_EQ_INT(o.json_ignore_unknown, 1);
  CHECK_EQ_INT(parse(3, argv, &o, err, sizeof err), 0);
  CHECK_EQ_INT(o.json_ignore_unknown, 0);
  CHECK_EQ_INT(parse(4, argv, &o, err, sizeof err), 0);
  CHECK_EQ_INT(o.json_ignore_unknown, 1);
}

TEST(config_sqs_region_and_account) {
  const char *argv[] = {"--sqs-region", "eu-west-3", "--sqs-account=123456789012",
                        "--sqs-credentials", "AKID:se:cret"};
  sb_serve_opts_t o;
  char err[128];
  CHECK_EQ_INT(parse(ARGC(argv), argv, &o, err, sizeof err), 0);
  CHECK_EQ_STR(o.sqs_region, "eu-west-3");
  CHECK_EQ_STR(o.sqs_account, "123456789012");
  CHECK_EQ_STR(o.sqs_credentials, "AKID:se:cret");
}

TEST(config_numbers_at_limits) {
  const char *argv[] = {"--threads",          "256",      "--header-timeout-ms", "4294967295",
                        "--max-header-bytes", "16777216", "--threads=0"};
  sb_serve_opts_t o;
  char err[128];
  CHECK_EQ_INT(parse(4, argv, &o, err, sizeof err), 0);
  CHECK_EQ_INT(o.server.threads, 256);
  CHECK_EQ_INT(o.server.header_timeout_ms, 4294967295u);
  CHECK_EQ_INT(parse(ARGC(argv), argv, &o, err, sizeof err), 0);
  CHECK_EQ_INT(o.server.max_header_bytes, 16777216);
  CHECK_EQ_INT(o.server.threads, 0);
}

TEST(config_tls_cert_and_key_go_together) {
  sb_serve_opts_t o;
  char err[128];
  const char *a1[] = {"--tls-cert", "cert.pem"};
  CHECK_EQ_INT(parse(ARGC(a1), a1, &o, err, sizeof err), SB_EINVAL);
  CHECK(strstr(err, "tls") != NULL);
  const char *a2[] = {"--tls-key=key.pem"};
  CHECK_EQ_INT(parse(ARGC(a2), a2, &o, err, sizeof err), SB_EINVAL);
  CHECK(strstr(err, "tls") != NULL);
  const char *a3[] = {"--tls-key=key.pem", "--tls-cert=cert.pem"};
  CHECK_EQ_INT(parse(ARGC(a3), a3, &o, err, sizeof err), 0);
  CHECK_EQ_STR(o.server.tls_cert, "cert.pem");
  CHECK_EQ_STR(o.server.tls_key, "key.pem");
}

TEST(config_error_message_fits_buffer) {
  /* A tiny error buffer must be truncated, never overrun (ASan watches the bounds). */
  sb_serve_opts_t o;
  char err[8];
  const char *argv[] = {"--a-very-long-unknown-flag-name", "1"};
  CHECK_EQ_INT(parse(ARGC(argv), argv, &o, err, sizeof err), SB_EINVAL);
  CHECK_EQ_INT(strlen(err), sizeof err - 1);
}
