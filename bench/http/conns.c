/*
 * conns: opens N keep-alive connections to HOST:PORT, sends one `GET PATH HTTP/1.1` request on
 * each, reads the whole response, and keeps every socket open. Prints "ready" once all N are
 * established, then waits for stdin to close; after that it prints "alive A of N" (how many
 * connections the server still had open) and exits.
 *
 * Usage: conns HOST PORT N [PATH]     (PATH defaults to /healthz)
 * Exit 0 when every connection got a 2xx answer, 1 otherwise. Built by bench/http/run.sh.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Reads one HTTP/1.1 response (headers + content-length body) from fd. Returns the status
 * code, or -1 on error/timeout/EOF. */
static int read_response(int fd) {
  char buf[8192];
  size_t len = 0;
  char *end = NULL;
  while (!end) {
    if (len == sizeof buf - 1) return -1;
    ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    len += (size_t)n;
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  int status = -1;
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
  size_t head = (size_t)(end + 4 - buf);
  long clen = 0;
  for (char *line = strstr(buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "content-length:", 15) == 0) clen = strtol(line + 17, NULL, 10);
  }
  long have = (long)(len - head);
  while (have < clen) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    have += n;
  }
  return status;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s HOST PORT N [PATH]\n", argv[0]);
    return 2;
  }
  const char *host = argv[1];
  int port = atoi(argv[2]);
  long n = strtol(argv[3], NULL, 10);
  const char *path = argc > 4 ? argv[4] : "/healthz";
  if (port <= 0 || port > 65535 || n <= 0) {
    fprintf(stderr, "conns: bad PORT or N\n");
    return 2;
  }

  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "conns: bad IPv4 address %s\n", host);
    return 2;
  }
  char req[512];
  int reqlen =
      snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: keep-alive\r\n\r\n",
               path, host, port);

  int *fds = calloc((size_t)n, sizeof *fds);
  if (!fds) return 1;
  struct timeval tmo = {.tv_sec = 10};
  for (long i = 0; i < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fprintf(stderr, "conns: socket #%ld: %s\n", i, strerror(errno));
      return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
      fprintf(stderr, "conns: connect #%ld: %s\n", i, strerror(errno));
      return 1;
    }
    if (send(fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen) {
      fprintf(stderr, "conns: send #%ld: %s\n", i, strerror(errno));
      return 1;
    }
    int status = read_response(fd);
    if (status < 200 || status > 299) {
      fprintf(stderr, "conns: connection #%ld: bad or no response (status %d)\n", i, status);
      return 1;
    }
    fds[i] = fd;
  }

  printf("ready\n");
  fflush(stdout);

  char sink[256];
  for (;;) {
    ssize_t r = read(0, sink, sizeof sink);
    if (r > 0 || (r < 0 && errno == EINTR)) continue;
    break;
  }

  long alive = 0;
  for (long i = 0; i < n; i++) {
    char c;
    ssize_t r = recv(fds[i], &c, 1, MSG_DONTWAIT | MSG_PEEK);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) alive++;
    close(fds[i]);
  }
  printf("alive %ld of %ld\n", alive, n);
  free(fds);
  return 0;
}
