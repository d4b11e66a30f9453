/*
 * sb_test_http: a blocking HTTP/1.0 GET for unit tests that run a real server on a loopback
 * port. One request per connection, the whole response read until the server closes, so no
 * response parsing beyond the status line and the blank line is needed.
 */
#ifndef SB_TEST_HTTP_H
#define SB_TEST_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* GETs path from 127.0.0.1:port into out (cap bytes, NUL-terminated; a longer response is cut
 * at cap - 1). Returns the status code and sets *body (inside out) and *blen, or returns 0
 * when the connection or the response failed. */
static inline int sb_test_http_get(int port, const char *path, char *out, size_t cap, char **body,
                                   size_t *blen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (fd >= 0) close(fd);
    return 0;
  }
  char req[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
  if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
    close(fd);
    return 0;
  }
  size_t len = 0;
  ssize_t r;
  while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
    len += (size_t)r;
  close(fd);
  out[len] = '\0';
  char *b = strstr(out, "\r\n\r\n");
  if (!b || strncmp(out, "HTTP/1.", 7) != 0 || len < 12) return 0;
  *body = b + 4;
  *blen = len - (size_t)(*body - out);
  return atoi(out + 9);
}

#endif
