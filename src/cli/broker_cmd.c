/*
 * The broker commands: queue, send, recv, tail, dlq, stats, stream, append and publish against a
 * running server, over gRPC with the project's client (include/switchboard/client.h) and
 * BrokerService's generated stubs (proto/switchboard/broker/v1/broker.proto).
 *
 * Each command is a short sequence of calls, so the client runs synchronously: one private
 * libuv loop, run until the call in flight has ended (rpc()). Responses are copied out of the
 * client's callback (where they are borrowed) by a serialize/deserialize round trip, and freed
 * by the command with protobuf_c_message_free_unpacked(). `tail --stream` and `tail --channel`
 * follow a server stream instead (follow()): the loop runs until the stream ends or a signal
 * arrives, and the client's callbacks print each message as it comes.
 *
 * Exit status: 0; 1 when the server answered an error or could not be reached (the message
 * goes to stderr); 2 for a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "broker.sb.h"
#include "cli/cli.h"
#include "switchboard/broker.h"
#include "switchboard/client.h"
#include "switchboard/error.h"

#define CLI_DEFAULT_ADDR "127.0.0.1:8080" /* the server's default HTTP listener */
#define CLI_TIMEOUT_MS 10000u             /* deadline of a call, on top of its long poll */
#define CLI_ATTRS_MAX 64u                 /* --attr options per command */
#define CLI_BODY_MAX (1u << 20)           /* bytes of a body read from stdin */
#define CLI_POLL_MS 200u                  /* progress polling interval of dlq redrive */
#define CLI_BAR_WIDTH 40                  /* characters of the progress bar */
#define CLI_NAMES_MAX 16u                 /* --channel, --pattern, --partition options */
#define CLI_RECORDS_MAX 100u              /* bodies per append (AppendRecords' limit) */

typedef Switchboard__Broker__V1__Queue Queue;

/* The connection of one command. Owned by the command; main thread only. */
typedef struct cli {
  uv_loop_t loop;      /* private loop the client runs on */
  sb_client_t *client; /* the client; freed by cli_close() */
  const char *addr;    /* server address (borrowed from argv) */
} cli_t;

/* One call's outcome, filled by the client's callbacks. */
typedef struct rpc_result {
  int done;              /* on_done ran */
  sb_code_t code;        /* its status */
  char message[512];     /* its message */
  ProtobufCMessage *msg; /* the response, unpacked with malloc; caller frees */
} rpc_result_t;

static void on_msg(const ProtobufCMessage *msg, void *ud) {
  rpc_result_t *r = ud;
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return;
  protobuf_c_message_pack(msg, buf);
  if (r->msg) protobuf_c_message_free_unpacked(r->msg, NULL);
  r->msg = protobuf_c_message_unpack(msg->descriptor, NULL, n, buf);
  free(buf);
}

static void on_done(sb_code_t code, const char *message, void *ud) {
  rpc_result_t *r = ud;
  r->done = 1;
  r->code = code;
  snprintf(r->message, sizeof r->message, "%s", message ? message : "");
}

static const sb_method_desc_t *method(const char *name) {
  const sb_service_desc_t *d = &switchboard__broker__v1__broker_service__desc;
  for (size_t i = 0; i < d->n_methods; i++)
    if (strcmp(d->methods[i].name, name) == 0) return &d->methods[i];
  return NULL;
}

/* Calls method `name` with req and waits. Returns the response (caller frees with
 * protobuf_c_message_free_unpacked), or NULL after printing the error. */
static void *rpc(cli_t *c, const char *name, const ProtobufCMessage *req, uint32_t extra_ms) {
  rpc_result_t r;
  memset(&r, 0, sizeof r);
  const sb_method_desc_t *m = method(name);
  int rc = m ? sb_client_call(c->client, m, req, CLI_TIMEOUT_MS + extra_ms, on_msg, on_done, &r)
             : SB_EINVAL;
  if (rc) {
    fprintf(stderr, "switchboard: %s: %s\n", name, sb_strerror(rc));
    return NULL;
  }
  while (!r.done)
    uv_run(&c->loop, UV_RUN_ONCE);
  if (r.code != SB_CODE_OK || !r.msg) {
    if (r.code == SB_CODE_UNAVAILABLE && strstr(r.message, "connect"))
      fprintf(stderr, "switchboard: cannot reach a server at %s: %s\n", c->addr, r.message);
    else
      fprintf(stderr, "switchboard: %s: %s\n", sb_code_name(r.code), r.message);
    if (r.msg) protobuf_c_message_free_unpacked(r.msg, NULL);
    return NULL;
  }
  return r.msg;
}

static int cli_open(cli_t *c, const char *addr) {
  memset(c, 0, sizeof *c);
  c->addr = addr;
  if (uv_loop_init(&c->loop)) return -1;
  if (sb_client_new(&c->loop, addr, &c->client)) {
    fprintf(stderr, "switchboard: bad --addr '%s' (want a numeric host:port)\n", addr);
    uv_loop_close(&c->loop);
    return -1;
  }
  return 0;
}

static void cli_close(cli_t *c) {
  sb_client_free(c->client);
  while (uv_run(&c->loop, UV_RUN_NOWAIT))
    ;
  uv_loop_close(&c->loop);
}

static void release(void *msg) {
  if (msg) protobuf_c_message_free_unpacked(msg, NULL);
}

/* ---- options ---- */

/* Options every broker command understands; fields unused by a command stay at their
 * defaults. Strings are borrowed from argv. */
typedef struct opts {
  const char *addr;                    /* --addr */
  const char *attrs[CLI_ATTRS_MAX];    /* --attr name=value (a filter for dlq: name[=value]) */
  size_t n_attrs;                      /* count */
  const char *group, *dedup;           /* --group, --dedup */
  const char *dlq;                     /* --dlq (queue create) */
  const char *to;                      /* --to (dlq redrive) */
  const char *prefix;                  /* --prefix (queue list) */
  const char *topic;                   /* --topic (tail) */
  const char *stream;                  /* --stream (tail) */
  const char *key;                     /* --key (append) */
  const char *channels[CLI_NAMES_MAX]; /* --channel (publish, tail) */
  size_t n_channels;                   /* count */
  const char *patterns[CLI_NAMES_MAX]; /* --pattern (tail) */
  size_t n_patterns;                   /* count */
  long partitions[CLI_NAMES_MAX];      /* --partition (append: one; tail: any) */
  size_t n_partitions;                 /* count */
  long n_parts;                        /* --partitions (stream create); -1 when unset */
  long offset;                         /* --offset (tail); -1 when unset */
  int from_beginning;                  /* --from-beginning (tail) */
  long delay, visibility, wait;        /* --delay, --visibility, --wait in ms; -1 when unset */
  long max, max_receives, rate;        /* --max, --max-receives, --rate; -1 when unset */
  long retention, max_messages;        /* --retention ms, --max-messages (queue create) */
  int fifo, ack, dry_run, verbose;     /* flags */
  char **args;                         /* positional arguments */
  int n_args;                          /* count */
} opts_t;

enum {
  O_ADDR = 256,
  O_ATTR,
  O_GROUP,
  O_DEDUP,
  O_DLQ,
  O_TO,
  O_PREFIX,
  O_TOPIC,
  O_DELAY,
  O_VIS,
  O_WAIT,
  O_MAX,
  O_MAXRECV,
  O_RATE,
  O_RETENTION,
  O_MAXMSG,
  O_FIFO,
  O_ACK,
  O_DRY,
  O_VERBOSE,
  O_STREAM,
  O_KEY,
  O_CHANNEL,
  O_PATTERN,
  O_PARTITION,
  O_PARTITIONS,
  O_OFFSET,
  O_BEGINNING
};

static const struct option long_opts[] = {
    {"addr", required_argument, NULL, O_ADDR},
    {"attr", required_argument, NULL, O_ATTR},
    {"group", required_argument, NULL, O_GROUP},
    {"dedup", required_argument, NULL, O_DEDUP},
    {"dlq", required_argument, NULL, O_DLQ},
    {"to", required_argument, NULL, O_TO},
    {"prefix", required_argument, NULL, O_PREFIX},
    {"topic", required_argument, NULL, O_TOPIC},
    {"delay", required_argument, NULL, O_DELAY},
    {"visibility", required_argument, NULL, O_VIS},
    {"wait", required_argument, NULL, O_WAIT},
    {"max", required_argument, NULL, O_MAX},
    {"max-receives", required_argument, NULL, O_MAXRECV},
    {"rate", required_argument, NULL, O_RATE},
    {"retention", required_argument, NULL, O_RETENTION},
    {"max-messages", required_argument, NULL, O_MAXMSG},
    {"fifo", no_argument, NULL, O_FIFO},
    {"ack", no_argument, NULL, O_ACK},
    {"dry-run", no_argument, NULL, O_DRY},
    {"verbose", no_argument, NULL, O_VERBOSE},
    {"stream", required_argument, NULL, O_STREAM},
    {"key", required_argument, NULL, O_KEY},
    {"channel", required_argument, NULL, O_CHANNEL},
    {"pattern", required_argument, NULL, O_PATTERN},
    {"partition", required_argument, NULL, O_PARTITION},
    {"partitions", required_argument, NULL, O_PARTITIONS},
    {"offset", required_argument, NULL, O_OFFSET},
    {"from-beginning", no_argument, NULL, O_BEGINNING},
    {0, 0, 0, 0},
};

static int number(const char *opt, const char *s, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < 0) {
    fprintf(stderr, "switchboard: %s wants a non-negative number, not '%s'\n", opt, s);
    return -1;
  }
  *out = v;
  return 0;
}

/* Parses argv (the arguments after the command word). Returns 0 or -1 (printed). */
static int parse(int argc, char **argv, opts_t *o) {
  memset(o, 0, sizeof *o);
  o->addr = CLI_DEFAULT_ADDR;
  o->delay = o->visibility = o->wait = o->max = o->max_receives = o->rate = -1;
  o->retention = o->max_messages = o->n_parts = o->offset = -1;
  /* getopt_long permutes argv so positional arguments may come anywhere; argv[0] is skipped,
   * so shift by one. */
  optind = 0;
  opterr = 1;
  int ch;
  while ((ch = getopt_long(argc + 1, argv - 1, "", long_opts, NULL)) != -1) {
    int bad = 0;
    switch (ch) {
    case O_ADDR:
      o->addr = optarg;
      break;
    case O_ATTR:
      if (o->n_attrs == CLI_ATTRS_MAX) {
        fprintf(stderr, "switchboard: at most %u --attr\n", CLI_ATTRS_MAX);
        return -1;
      }
      o->attrs[o->n_attrs++] = optarg;
      break;
    case O_GROUP:
      o->group = optarg;
      break;
    case O_DEDUP:
      o->dedup = optarg;
      break;
    case O_DLQ:
      o->dlq = optarg;
      break;
    case O_TO:
      o->to = optarg;
      break;
    case O_PREFIX:
      o->prefix = optarg;
      break;
    case O_TOPIC:
      o->topic = optarg;
      break;
    case O_DELAY:
      bad = number("--delay", optarg, &o->delay);
      break;
    case O_VIS:
      bad = number("--visibility", optarg, &o->visibility);
      break;
    case O_WAIT:
      bad = number("--wait", optarg, &o->wait);
      break;
    case O_MAX:
      bad = number("--max", optarg, &o->max);
      break;
    case O_MAXRECV:
      bad = number("--max-receives", optarg, &o->max_receives);
      break;
    case O_RATE:
      bad = number("--rate", optarg, &o->rate);
      break;
    case O_RETENTION:
      bad = number("--retention", optarg, &o->retention);
      break;
    case O_MAXMSG:
      bad = number("--max-messages", optarg, &o->max_messages);
      break;
    case O_FIFO:
      o->fifo = 1;
      break;
    case O_ACK:
      o->ack = 1;
      break;
    case O_DRY:
      o->dry_run = 1;
      break;
    case O_VERBOSE:
      o->verbose = 1;
      break;
    case O_STREAM:
      o->stream = optarg;
      break;
    case O_KEY:
      o->key = optarg;
      break;
    case O_CHANNEL:
    case O_PATTERN:
    case O_PARTITION: {
      size_t *n = ch == O_CHANNEL   ? &o->n_channels
                  : ch == O_PATTERN ? &o->n_patterns
                                    : &o->n_partitions;
      if (*n == CLI_NAMES_MAX) {
        fprintf(stderr, "switchboard: at most %u --channel, --pattern or --partition\n",
                CLI_NAMES_MAX);
        return -1;
      }
      if (ch == O_CHANNEL)
        o->channels[(*n)++] = optarg;
      else if (ch == O_PATTERN)
        o->patterns[(*n)++] = optarg;
      else
        bad = number("--partition", optarg, &o->partitions[(*n)++]);
      break;
    }
    case O_PARTITIONS:
      bad = number("--partitions", optarg, &o->n_parts);
      break;
    case O_OFFSET:
      bad = number("--offset", optarg, &o->offset);
      break;
    case O_BEGINNING:
      o->from_beginning = 1;
      break;
    default:
      return -1;
    }
    if (bad) return -1;
  }
  o->args = argv - 1 + optind;
  o->n_args = argc + 1 - optind;
  return 0;
}

/* ---- printing ---- */

static void print_payload(const ProtobufCBinaryData *bytes, const char *text) {
  if (!bytes->len)
    printf("%s\n", text ? text : "");
  else {
    /* Binary bodies print as hex so a terminal stays usable. */
    for (size_t i = 0; i < bytes->len; i++)
      printf("%02x", bytes->data[i]);
    printf("\n");
  }
}

static void print_body(const Switchboard__Broker__V1__Message *m) {
  print_payload(&m->body, m->text);
}

static void print_message(const Switchboard__Broker__V1__Message *m, int verbose) {
  if (verbose) {
    printf("# id=%s seq=%llu receives=%u", m->message_id, (unsigned long long)m->sequence,
           m->receive_count);
    if (m->group && m->group[0]) printf(" group=%s", m->group);
    for (size_t k = 0; k < m->n_attributes; k++) {
      const Switchboard__Broker__V1__AttributeValue *v = m->attributes[k]->value;
      printf(" %s=%s", m->attributes[k]->key,
             v && v->string_value && v->string_value[0] ? v->string_value : "<binary>");
    }
    if (m->dead_letter) printf(" dead-lettered-from=%s", m->dead_letter->source_queue);
    printf("\n");
  }
  print_body(m);
}

/* ---- commands ---- */

static int usage_error(const char *what) {
  fprintf(stderr, "switchboard: %s (see switchboard --help)\n", what);
  return 2;
}

static int queue_create(cli_t *c, const opts_t *o, const char *name) {
  Switchboard__Broker__V1__CreateQueueRequest req =
      SWITCHBOARD__BROKER__V1__CREATE_QUEUE_REQUEST__INIT;
  Switchboard__Broker__V1__QueueConfig cfg = SWITCHBOARD__BROKER__V1__QUEUE_CONFIG__INIT;
  Google__Protobuf__UInt32Value vis = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
  req.name = (char *)name;
  req.config = &cfg;
  if (o->visibility >= 0) {
    vis.value = (uint32_t)o->visibility;
    cfg.visibility_timeout_ms = &vis;
  }
  if (o->delay >= 0) cfg.delay_ms = (uint32_t)o->delay;
  if (o->retention >= 0) cfg.retention_ms = (uint64_t)o->retention;
  if (o->max_messages >= 0) cfg.max_messages = (uint64_t)o->max_messages;
  if (o->wait >= 0) cfg.receive_wait_ms = (uint32_t)o->wait;
  if (o->max_receives >= 0) cfg.max_receive_count = (uint32_t)o->max_receives;
  if (o->dlq) cfg.dead_letter_queue = (char *)o->dlq;
  cfg.fifo = o->fifo;
  Queue *q = rpc(c, "CreateQueue", &req.base, 0);
  if (!q) return 1;
  printf("%s\n", q->name);
  release(q);
  return 0;
}

static void print_stats_row(const Queue *q) {
  const Switchboard__Broker__V1__QueueStats *s = q->stats;
  printf("%-32s %9llu %9llu %9llu %9llu %9llu %9llu %9llu\n", q->name,
         (unsigned long long)(s ? s->visible : 0), (unsigned long long)(s ? s->in_flight : 0),
         (unsigned long long)(s ? s->delayed : 0), (unsigned long long)(s ? s->sent : 0),
         (unsigned long long)(s ? s->received : 0), (unsigned long long)(s ? s->deleted : 0),
         (unsigned long long)(s ? s->dead_lettered : 0));
}

static void print_stats_header(void) {
  printf("%-32s %9s %9s %9s %9s %9s %9s %9s\n", "QUEUE", "VISIBLE", "IN_FLIGHT", "DELAYED", "SENT",
         "RECEIVED", "DELETED", "DLQ_MOVED");
}

static Queue *get_queue(cli_t *c, const char *name) {
  Switchboard__Broker__V1__GetQueueRequest req = SWITCHBOARD__BROKER__V1__GET_QUEUE_REQUEST__INIT;
  req.name = (char *)name;
  return rpc(c, "GetQueue", &req.base, 0);
}

/* Lists every queue (all pages) with its stats; `names_only` prints just the names. */
static int queue_list(cli_t *c, const char *prefix, int names_only) {
  char token[SB_BROKER_NAME_MAX + 1] = "";
  if (!names_only) print_stats_header();
  for (;;) {
    Switchboard__Broker__V1__ListQueuesRequest req =
        SWITCHBOARD__BROKER__V1__LIST_QUEUES_REQUEST__INIT;
    req.prefix = (char *)(prefix ? prefix : "");
    req.page_token = token;
    Switchboard__Broker__V1__ListQueuesResponse *res = rpc(c, "ListQueues", &req.base, 0);
    if (!res) return 1;
    for (size_t i = 0; i < res->n_names; i++) {
      if (names_only) {
        printf("%s\n", res->names[i]);
        continue;
      }
      Queue *q = get_queue(c, res->names[i]);
      if (q) print_stats_row(q); /* a queue deleted meanwhile is skipped */
      release(q);
    }
    int more = res->next_page_token && res->next_page_token[0];
    if (more) snprintf(token, sizeof token, "%s", res->next_page_token);
    release(res);
    if (!more) return 0;
  }
}

static int queue_stats(cli_t *c, const char *name) {
  Queue *q = get_queue(c, name);
  if (!q) return 1;
  const Switchboard__Broker__V1__QueueStats *s = q->stats;
  const Switchboard__Broker__V1__QueueConfig *cfg = q->config;
  printf("queue            %s%s\n", q->name, cfg && cfg->fifo ? " (fifo)" : "");
  printf("visible          %llu\n", (unsigned long long)(s ? s->visible : 0));
  printf("in_flight        %llu\n", (unsigned long long)(s ? s->in_flight : 0));
  printf("delayed          %llu\n", (unsigned long long)(s ? s->delayed : 0));
  printf("sent             %llu\n", (unsigned long long)(s ? s->sent : 0));
  printf("received         %llu\n", (unsigned long long)(s ? s->received : 0));
  printf("deleted          %llu\n", (unsigned long long)(s ? s->deleted : 0));
  printf("dead_lettered    %llu\n", (unsigned long long)(s ? s->dead_lettered : 0));
  printf("expired          %llu\n", (unsigned long long)(s ? s->expired : 0));
  if (s && s->oldest_message_time)
    printf("oldest_age_s     %lld\n",
           (long long)time(NULL) - (long long)s->oldest_message_time->seconds);
  if (cfg) {
    printf("visibility_ms    %u\n",
           cfg->visibility_timeout_ms ? cfg->visibility_timeout_ms->value : 0);
    if (cfg->dead_letter_queue && cfg->dead_letter_queue[0])
      printf("dead_letter      %s (after %u receives)\n", cfg->dead_letter_queue,
             cfg->max_receive_count);
  }
  release(q);
  return 0;
}

static int queue_delete(cli_t *c, const char *name) {
  Switchboard__Broker__V1__DeleteQueueRequest req =
      SWITCHBOARD__BROKER__V1__DELETE_QUEUE_REQUEST__INIT;
  req.name = (char *)name;
  void *res = rpc(c, "DeleteQueue", &req.base, 0);
  release(res);
  return res ? 0 : 1;
}

/* Reads all of stdin (up to CLI_BODY_MAX). Returns a malloc'ed buffer or NULL. */
static char *read_stdin(size_t *len) {
  char *buf = malloc(CLI_BODY_MAX + 1);
  if (!buf) return NULL;
  size_t n = fread(buf, 1, CLI_BODY_MAX + 1, stdin);
  if (n > CLI_BODY_MAX) {
    free(buf);
    fprintf(stderr, "switchboard: the body on stdin is larger than %u bytes\n", CLI_BODY_MAX);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

static int cmd_send(cli_t *c, const opts_t *o) {
  if (o->n_args < 1 || o->n_args > 2)
    return usage_error("send QUEUE [BODY] (or the body on stdin)");
  char *in = NULL;
  size_t in_len = 0;
  Switchboard__Broker__V1__SendEntry e = SWITCHBOARD__BROKER__V1__SEND_ENTRY__INIT;
  if (o->n_args == 2) {
    e.text = o->args[1];
  } else {
    if (!(in = read_stdin(&in_len))) return 1;
    e.body.data = (uint8_t *)in;
    e.body.len = in_len;
  }
  Switchboard__Broker__V1__SendEntry__AttributesEntry ents[CLI_ATTRS_MAX], *pents[CLI_ATTRS_MAX];
  Switchboard__Broker__V1__AttributeValue vals[CLI_ATTRS_MAX];
  char names[CLI_ATTRS_MAX][256];
  for (size_t i = 0; i < o->n_attrs; i++) {
    const char *eq = strchr(o->attrs[i], '=');
    if (!eq || eq == o->attrs[i] || (size_t)(eq - o->attrs[i]) >= sizeof names[i]) {
      free(in);
      return usage_error("--attr wants name=value");
    }
    snprintf(names[i], sizeof names[i], "%.*s", (int)(eq - o->attrs[i]), o->attrs[i]);
    switchboard__broker__v1__send_entry__attributes_entry__init(&ents[i]);
    switchboard__broker__v1__attribute_value__init(&vals[i]);
    vals[i].string_value = (char *)eq + 1;
    /* Numbers get the Number type, so numeric filter policies match them. */
    char *end;
    (void)strtod(eq + 1, &end);
    vals[i].type = (char *)(eq[1] && !*end ? "Number" : "String");
    ents[i].key = names[i];
    ents[i].value = &vals[i];
    pents[i] = &ents[i];
  }
  e.attributes = pents;
  e.n_attributes = o->n_attrs;
  if (o->group) e.group = (char *)o->group;
  if (o->dedup) e.dedup_id = (char *)o->dedup;
  Google__Protobuf__UInt32Value delay = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
  if (o->delay >= 0) {
    delay.value = (uint32_t)o->delay;
    e.delay_ms = &delay;
  }
  Switchboard__Broker__V1__SendEntry *pe = &e;
  Switchboard__Broker__V1__SendMessagesRequest req =
      SWITCHBOARD__BROKER__V1__SEND_MESSAGES_REQUEST__INIT;
  req.queue = o->args[0];
  req.messages = &pe;
  req.n_messages = 1;
  Switchboard__Broker__V1__SendMessagesResponse *res = rpc(c, "SendMessages", &req.base, 0);
  free(in);
  if (!res) return 1;
  int rc = 0;
  if (res->n_results == 1) printf("%s\n", res->results[0]->message_id);
  release(res);
  return rc;
}

/* Receives once and prints; with ack deletes what was printed. Returns the number printed,
 * or -1 on an error (printed). */
static int receive_once(cli_t *c, const char *queue, const opts_t *o, long wait, int ack) {
  Switchboard__Broker__V1__ReceiveMessagesRequest req =
      SWITCHBOARD__BROKER__V1__RECEIVE_MESSAGES_REQUEST__INIT;
  Google__Protobuf__UInt32Value w = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
  Google__Protobuf__UInt32Value v = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
  req.queue = (char *)queue;
  req.max_messages = o->max > 0 ? (uint32_t)o->max : 1;
  if (wait >= 0) {
    w.value = (uint32_t)wait;
    req.wait_time_ms = &w;
  }
  if (o->visibility >= 0) {
    v.value = (uint32_t)o->visibility;
    req.visibility_timeout_ms = &v;
  }
  Switchboard__Broker__V1__ReceiveMessagesResponse *res =
      rpc(c, "ReceiveMessages", &req.base, wait > 0 ? (uint32_t)wait : SB_BROKER_WAIT_MAX_MS);
  if (!res) return -1;
  for (size_t i = 0; i < res->n_messages; i++)
    print_message(res->messages[i], o->verbose);
  fflush(stdout);
  int n = (int)res->n_messages;
  if (ack && n) {
    Switchboard__Broker__V1__DeleteMessagesRequest del =
        SWITCHBOARD__BROKER__V1__DELETE_MESSAGES_REQUEST__INIT;
    char *handles[SB_BROKER_BATCH_MAX];
    for (size_t i = 0; i < res->n_messages && i < SB_BROKER_BATCH_MAX; i++)
      handles[i] = res->messages[i]->receipt_handle;
    del.queue = (char *)queue;
    del.receipt_handles = handles;
    del.n_receipt_handles = res->n_messages;
    void *dres = rpc(c, "DeleteMessages", &del.base, 0);
    if (!dres) n = -1;
    release(dres);
  }
  release(res);
  return n;
}

static int cmd_recv(cli_t *c, const opts_t *o) {
  if (o->n_args != 1) return usage_error("recv QUEUE");
  return receive_once(c, o->args[0], o, o->wait, o->ack) < 0 ? 1 : 0;
}

static volatile sig_atomic_t stop_flag; /* set by SIGINT/SIGTERM during tail */

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

/* Follows a queue (or a topic, through a temporary queue subscribed to it) until
 * interrupted: long polls and prints. Polls in short waits so an interrupt ends it soon. */
static int tail_stream(cli_t *c, const opts_t *o);
static int tail_channels(cli_t *c, const opts_t *o);

static int cmd_tail(cli_t *c, const opts_t *o) {
  if (!!o->topic + !!o->stream + !!(o->n_channels || o->n_patterns) > 1)
    return usage_error("tail takes one of QUEUE, --topic, --stream and --channel/--pattern");
  if (o->stream) return tail_stream(c, o);
  if (o->n_channels || o->n_patterns) return tail_channels(c, o);
  if ((o->topic && o->n_args != 0) || (!o->topic && o->n_args != 1))
    return usage_error("tail QUEUE | tail --topic TOPIC");
  char tmp[SB_BROKER_NAME_MAX + 1] = "";
  char sub_id[64] = "";
  const char *queue = o->topic ? tmp : o->args[0];
  int ack = o->ack;
  if (o->topic) {
    snprintf(tmp, sizeof tmp, "tail-%ld", (long)getpid());
    Switchboard__Broker__V1__CreateQueueRequest cq =
        SWITCHBOARD__BROKER__V1__CREATE_QUEUE_REQUEST__INIT;
    cq.name = tmp;
    Queue *q = rpc(c, "CreateQueue", &cq.base, 0);
    if (!q) return 1;
    release(q);
    Switchboard__Broker__V1__SubscribeRequest sr = SWITCHBOARD__BROKER__V1__SUBSCRIBE_REQUEST__INIT;
    sr.topic = (char *)o->topic;
    sr.queue = tmp;
    Switchboard__Broker__V1__Subscription *s = rpc(c, "Subscribe", &sr.base, 0);
    if (!s) {
      queue_delete(c, tmp);
      return 1;
    }
    snprintf(sub_id, sizeof sub_id, "%s", s->id);
    release(s);
    ack = 1; /* the temporary queue is ours alone */
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int rc = 0;
  while (!stop_flag) {
    if (receive_once(c, queue, o, 1000, ack) < 0) {
      rc = 1;
      break;
    }
  }
  if (o->topic) {
    Switchboard__Broker__V1__UnsubscribeRequest ur =
        SWITCHBOARD__BROKER__V1__UNSUBSCRIBE_REQUEST__INIT;
    ur.id = sub_id;
    release(rpc(c, "Unsubscribe", &ur.base, 0));
    queue_delete(c, tmp);
  }
  return rc;
}

/* Lists (a page at a time) the messages of queue matching the --attr filter. Returns the
 * count or -1. */
static long peek_all(cli_t *c, const char *queue, const opts_t *o, int print) {
  char name[256] = "";
  const char *value = "";
  if (o->n_attrs) {
    const char *eq = strchr(o->attrs[0], '=');
    size_t n = eq ? (size_t)(eq - o->attrs[0]) : strlen(o->attrs[0]);
    snprintf(name, sizeof name, "%.*s", (int)n, o->attrs[0]);
    if (eq) value = eq + 1;
  }
  long total = 0;
  uint64_t from = 0;
  for (;;) {
    Switchboard__Broker__V1__PeekMessagesRequest req =
        SWITCHBOARD__BROKER__V1__PEEK_MESSAGES_REQUEST__INIT;
    req.queue = (char *)queue;
    req.from_sequence = from;
    req.max_messages = 100;
    req.attribute_name = name;
    req.attribute_value = (char *)value;
    Switchboard__Broker__V1__PeekMessagesResponse *res = rpc(c, "PeekMessages", &req.base, 0);
    if (!res) return -1;
    if (print)
      for (size_t i = 0; i < res->n_messages; i++)
        print_message(res->messages[i], 1);
    total += (long)res->n_messages;
    size_t n = res->n_messages;
    from = res->next_sequence;
    release(res);
    if (n == 0 || (o->max > 0 && total >= o->max)) return total;
  }
}

static void progress(const Switchboard__Broker__V1__RedriveTask *t) {
  uint64_t to = t->to_move ? t->to_move : 1;
  int fill = (int)(t->moved >= to ? CLI_BAR_WIDTH : t->moved * CLI_BAR_WIDTH / to);
  char bar[CLI_BAR_WIDTH + 1];
  memset(bar, '#', (size_t)fill);
  memset(bar + fill, '.', (size_t)(CLI_BAR_WIDTH - fill));
  bar[CLI_BAR_WIDTH] = 0;
  fprintf(stderr, "\r[%s] %llu/%llu", bar, (unsigned long long)t->moved,
          (unsigned long long)t->to_move);
  fflush(stderr);
}

static int dlq_redrive(cli_t *c, const opts_t *o, const char *dlq) {
  if (o->dry_run) {
    long n = peek_all(c, dlq, o, 1);
    if (n < 0) return 1;
    printf("%ld message(s) would be redriven from %s to %s\n", n, dlq,
           o->to ? o->to : "their source queues");
    return 0;
  }
  if (o->n_attrs) return usage_error("--attr filters the --dry-run listing only");
  Switchboard__Broker__V1__StartRedriveRequest req =
      SWITCHBOARD__BROKER__V1__START_REDRIVE_REQUEST__INIT;
  req.source_queue = (char *)dlq;
  req.destination_queue = (char *)(o->to ? o->to : "");
  req.rate = o->rate > 0 ? (uint32_t)o->rate : 0;
  Switchboard__Broker__V1__RedriveTask *t = rpc(c, "StartRedrive", &req.base, 0);
  if (!t) return 1;
  char handle[64];
  snprintf(handle, sizeof handle, "%s", t->handle);
  int tty = isatty(2);
  for (;;) {
    if (tty) progress(t);
    int state = t->state;
    if (state != SWITCHBOARD__BROKER__V1__REDRIVE_STATE__REDRIVE_STATE_RUNNING) break;
    release(t);
    t = NULL;
    uv_sleep(CLI_POLL_MS);
    Switchboard__Broker__V1__ListRedrivesRequest lr =
        SWITCHBOARD__BROKER__V1__LIST_REDRIVES_REQUEST__INIT;
    lr.source_queue = (char *)dlq;
    lr.max_results = 10;
    Switchboard__Broker__V1__ListRedrivesResponse *res = rpc(c, "ListRedrives", &lr.base, 0);
    if (!res) return 1;
    for (size_t i = 0; i < res->n_tasks && !t; i++)
      if (strcmp(res->tasks[i]->handle, handle) == 0) {
        /* Keep this task: detach it from the list before the list is freed. */
        t = res->tasks[i];
        res->tasks[i] = res->tasks[--res->n_tasks];
      }
    release(res);
    if (!t) {
      fprintf(stderr, "switchboard: redrive task %s disappeared\n", handle);
      return 1;
    }
  }
  if (tty) fprintf(stderr, "\n");
  int ok = t->state == SWITCHBOARD__BROKER__V1__REDRIVE_STATE__REDRIVE_STATE_COMPLETED;
  printf("redrive %s: %s, %llu of %llu moved%s%s\n", handle,
         ok                                                                            ? "completed"
         : t->state == SWITCHBOARD__BROKER__V1__REDRIVE_STATE__REDRIVE_STATE_CANCELLED ? "cancelled"
                                                                                       : "failed",
         (unsigned long long)t->moved, (unsigned long long)t->to_move,
         t->failure && t->failure[0] ? ": " : "", t->failure ? t->failure : "");
  release(t);
  return ok ? 0 : 1;
}

static int cmd_dlq(cli_t *c, const opts_t *o) {
  if (o->n_args != 2) return usage_error("dlq list|redrive DLQ");
  if (strcmp(o->args[0], "list") == 0) {
    Switchboard__Broker__V1__ListDeadLetterSourcesRequest req =
        SWITCHBOARD__BROKER__V1__LIST_DEAD_LETTER_SOURCES_REQUEST__INIT;
    req.queue = o->args[1];
    Switchboard__Broker__V1__ListDeadLetterSourcesResponse *res =
        rpc(c, "ListDeadLetterSources", &req.base, 0);
    if (!res) return 1;
    printf("# dead-letter queue of:");
    for (size_t i = 0; i < res->n_queues; i++)
      printf(" %s", res->queues[i]);
    printf("\n");
    release(res);
    long n = peek_all(c, o->args[1], o, 1);
    if (n < 0) return 1;
    printf("# %ld message(s)\n", n);
    return 0;
  }
  if (strcmp(o->args[0], "redrive") == 0) return dlq_redrive(c, o, o->args[1]);
  return usage_error("dlq list|redrive DLQ");
}

static int cmd_queue(cli_t *c, const opts_t *o) {
  if (o->n_args < 1) return usage_error("queue create|list|delete|stats");
  const char *sub = o->args[0];
  if (strcmp(sub, "list") == 0 && o->n_args == 1) return queue_list(c, o->prefix, !o->verbose);
  if (o->n_args != 2) return usage_error("queue create|delete|stats NAME");
  if (strcmp(sub, "create") == 0) return queue_create(c, o, o->args[1]);
  if (strcmp(sub, "delete") == 0) return queue_delete(c, o->args[1]);
  if (strcmp(sub, "stats") == 0) return queue_stats(c, o->args[1]);
  return usage_error("queue create|list|delete|stats");
}

/* ---- streams and pub/sub ---- */

typedef Switchboard__Broker__V1__Stream Stream;

static int stream_create(cli_t *c, const opts_t *o, const char *name) {
  Switchboard__Broker__V1__CreateStreamRequest req =
      SWITCHBOARD__BROKER__V1__CREATE_STREAM_REQUEST__INIT;
  Switchboard__Broker__V1__StreamConfig cfg = SWITCHBOARD__BROKER__V1__STREAM_CONFIG__INIT;
  req.name = (char *)name;
  req.config = &cfg;
  if (o->n_parts >= 0) cfg.partitions = (uint32_t)o->n_parts;
  if (o->retention >= 0) cfg.retention_ms = (uint64_t)o->retention;
  Stream *s = rpc(c, "CreateStream", &req.base, 0);
  if (!s) return 1;
  printf("%s\n", s->name);
  release(s);
  return 0;
}

static Stream *get_stream(cli_t *c, const char *name) {
  Switchboard__Broker__V1__GetStreamRequest req = SWITCHBOARD__BROKER__V1__GET_STREAM_REQUEST__INIT;
  req.name = (char *)name;
  return rpc(c, "GetStream", &req.base, 0);
}

/* Records stored now, all partitions together. */
static unsigned long long stream_records(const Stream *s) {
  unsigned long long n = 0;
  for (size_t i = 0; i < s->n_partitions; i++)
    n += s->partitions[i]->next_offset - s->partitions[i]->first_offset;
  return n;
}

static void print_stream_header(void) {
  printf("%-32s %10s %9s %9s\n", "STREAM", "PARTITIONS", "RECORDS", "GROUPS");
}

static void print_stream_row(const Stream *s) {
  printf("%-32s %10zu %9llu %9zu\n", s->name, s->n_partitions, stream_records(s), s->n_groups);
}

/* Every stream (all pages); with `table`, each with its partitions, records and groups. */
static int stream_list(cli_t *c, const char *prefix, int table) {
  char token[SB_BROKER_NAME_MAX + 1] = "";
  int header = 0;
  for (;;) {
    Switchboard__Broker__V1__ListStreamsRequest req =
        SWITCHBOARD__BROKER__V1__LIST_STREAMS_REQUEST__INIT;
    req.prefix = (char *)(prefix ? prefix : "");
    req.page_token = token;
    Switchboard__Broker__V1__ListStreamsResponse *res = rpc(c, "ListStreams", &req.base, 0);
    if (!res) return 1;
    for (size_t i = 0; i < res->n_names; i++) {
      if (!table) {
        printf("%s\n", res->names[i]);
        continue;
      }
      Stream *s = get_stream(c, res->names[i]);
      if (s && !header++) print_stream_header();
      if (s) print_stream_row(s); /* a stream deleted meanwhile is skipped */
      release(s);
    }
    int more = res->next_page_token && res->next_page_token[0];
    if (more) snprintf(token, sizeof token, "%s", res->next_page_token);
    release(res);
    if (!more) return 0;
  }
}

static int stream_stats(cli_t *c, const char *name) {
  Stream *s = get_stream(c, name);
  if (!s) return 1;
  const Switchboard__Broker__V1__StreamConfig *cfg = s->config;
  printf("stream           %s\n", s->name);
  printf("partitions       %zu\n", s->n_partitions);
  printf("records          %llu\n", stream_records(s));
  printf("retention_ms     %llu\n", (unsigned long long)(cfg ? cfg->retention_ms : 0));
  printf("\n%-9s %12s %12s\n", "PARTITION", "FIRST", "NEXT");
  for (size_t i = 0; i < s->n_partitions; i++)
    printf("%-9u %12llu %12llu\n", s->partitions[i]->partition,
           (unsigned long long)s->partitions[i]->first_offset,
           (unsigned long long)s->partitions[i]->next_offset);
  if (s->n_groups) printf("\n%-32s %9s  %s\n", "GROUP", "LAG", "COMMITTED (partition:offset)");
  for (size_t i = 0; i < s->n_groups; i++) {
    const Switchboard__Broker__V1__ConsumerGroup *g = s->groups[i];
    printf("%-32s %9llu ", g->name, (unsigned long long)g->lag);
    for (size_t k = 0; k < g->n_committed; k++)
      printf(" %u:%llu", g->committed[k]->partition, (unsigned long long)g->committed[k]->offset);
    printf("\n");
  }
  release(s);
  return 0;
}

static int stream_delete(cli_t *c, const char *name) {
  Switchboard__Broker__V1__DeleteStreamRequest req =
      SWITCHBOARD__BROKER__V1__DELETE_STREAM_REQUEST__INIT;
  req.name = (char *)name;
  void *res = rpc(c, "DeleteStream", &req.base, 0);
  release(res);
  return res ? 0 : 1;
}

static int cmd_stream(cli_t *c, const opts_t *o) {
  if (o->n_args < 1) return usage_error("stream create|list|delete|stats");
  const char *sub = o->args[0];
  if (strcmp(sub, "list") == 0 && o->n_args == 1) return stream_list(c, o->prefix, o->verbose);
  if (o->n_args != 2) return usage_error("stream create|delete|stats NAME");
  if (strcmp(sub, "create") == 0) return stream_create(c, o, o->args[1]);
  if (strcmp(sub, "delete") == 0) return stream_delete(c, o->args[1]);
  if (strcmp(sub, "stats") == 0) return stream_stats(c, o->args[1]);
  return usage_error("stream create|list|delete|stats");
}

/* Appends each BODY as one record (or stdin as one), in order, in one call; prints where each
 * went. */
static int cmd_append(cli_t *c, const opts_t *o) {
  if (o->n_args < 1 || o->n_args > 1 + (int)CLI_RECORDS_MAX)
    return usage_error("append STREAM [--key K] [--partition N] BODY... (at most 100)");
  if (o->n_partitions > 1) return usage_error("append takes one --partition");
  size_t n = o->n_args > 1 ? (size_t)o->n_args - 1 : 1;
  char *in = NULL;
  size_t in_len = 0;
  if (o->n_args == 1 && !(in = read_stdin(&in_len))) return 1;
  Switchboard__Broker__V1__AppendEntry ents[CLI_RECORDS_MAX], *pents[CLI_RECORDS_MAX];
  Google__Protobuf__UInt32Value part = GOOGLE__PROTOBUF__UINT32_VALUE__INIT;
  part.value = o->n_partitions ? (uint32_t)o->partitions[0] : 0;
  for (size_t i = 0; i < n; i++) {
    switchboard__broker__v1__append_entry__init(&ents[i]);
    if (in) {
      ents[i].value.data = (uint8_t *)in;
      ents[i].value.len = in_len;
    } else
      ents[i].text = o->args[1 + i];
    if (o->key) ents[i].key_text = (char *)o->key;
    if (o->n_partitions) ents[i].partition = &part;
    pents[i] = &ents[i];
  }
  Switchboard__Broker__V1__AppendRecordsRequest req =
      SWITCHBOARD__BROKER__V1__APPEND_RECORDS_REQUEST__INIT;
  req.stream = o->args[0];
  req.records = pents;
  req.n_records = n;
  Switchboard__Broker__V1__AppendRecordsResponse *res = rpc(c, "AppendRecords", &req.base, 0);
  free(in);
  if (!res) return 1;
  int rc = 0;
  for (size_t i = 0; i < res->n_results; i++) {
    const Switchboard__Broker__V1__AppendResult *r = res->results[i];
    if (r->code) {
      fprintf(stderr, "switchboard: record %zu: %s: %s\n", i, sb_code_name((sb_code_t)r->code),
              r->error);
      rc = 1;
    } else
      printf("partition=%u offset=%llu\n", r->partition, (unsigned long long)r->offset);
  }
  release(res);
  return rc;
}

static int cmd_publish(cli_t *c, const opts_t *o) {
  if (o->n_channels != 1 || o->n_args > 1)
    return usage_error("publish --channel CHANNEL [BODY] (or the body on stdin)");
  char *in = NULL;
  size_t in_len = 0;
  Switchboard__Broker__V1__PublishChannelRequest req =
      SWITCHBOARD__BROKER__V1__PUBLISH_CHANNEL_REQUEST__INIT;
  req.channel = (char *)o->channels[0];
  if (o->n_args == 1)
    req.text = o->args[0];
  else {
    if (!(in = read_stdin(&in_len))) return 1;
    req.data.data = (uint8_t *)in;
    req.data.len = in_len;
  }
  Switchboard__Broker__V1__PublishChannelResponse *res = rpc(c, "PublishChannel", &req.base, 0);
  free(in);
  if (!res) return 1;
  printf("%llu\n", (unsigned long long)res->receivers);
  release(res);
  return 0;
}

/* A server stream followed until it ends or SIGINT/SIGTERM; with a consumer group, the
 * offsets after every printed record are committed as they go, at most one commit in flight
 * (later ones coalesce), and the last before exit. Lives on the command's stack; every
 * callback that refers to it has run before the command returns (it frees the client). */
typedef struct follow {
  cli_t *c;
  int verbose;
  int done;          /* the stream ended */
  sb_code_t code;    /* ... with this status */
  char message[512]; /* ... and message */
  int stopped;       /* a signal asked to stop */
  uv_signal_t sig[2];
  const char *stream, *group;              /* group commits, or group NULL */
  uint64_t next[SB_STREAM_PARTITIONS_MAX]; /* per partition: the offset to commit */
  uint8_t dirty[SB_STREAM_PARTITIONS_MAX]; /* ... not committed yet */
  int committing;                          /* a commit is in flight */
  int commit_failed;                       /* a commit answered an error (printed) */
} follow_t;

static void follow_signal(uv_signal_t *h, int signum) {
  (void)signum;
  follow_t *f = h->data;
  f->stopped = 1;
}

static void follow_done(sb_code_t code, const char *message, void *ud) {
  follow_t *f = ud;
  f->done = 1;
  f->code = code;
  snprintf(f->message, sizeof f->message, "%s", message ? message : "");
}

static void follow_commit(follow_t *f);

static void commit_done(sb_code_t code, const char *message, void *ud) {
  follow_t *f = ud;
  f->committing = 0;
  if (code != SB_CODE_OK) {
    fprintf(stderr, "switchboard: commit: %s: %s\n", sb_code_name(code), message);
    f->commit_failed = 1;
    return;
  }
  follow_commit(f);
}

/* Starts a commit of the dirty partitions unless one is in flight. */
static void follow_commit(follow_t *f) {
  if (f->committing || f->commit_failed) return;
  Switchboard__Broker__V1__PartitionOffset po[SB_STREAM_PARTITIONS_MAX],
      *ppo[SB_STREAM_PARTITIONS_MAX];
  size_t n = 0;
  for (uint32_t p = 0; p < SB_STREAM_PARTITIONS_MAX; p++) {
    if (!f->dirty[p]) continue;
    switchboard__broker__v1__partition_offset__init(&po[n]);
    po[n].partition = p;
    po[n].offset = f->next[p];
    ppo[n] = &po[n];
    n++;
    f->dirty[p] = 0;
  }
  if (!n) return;
  Switchboard__Broker__V1__CommitOffsetsRequest req =
      SWITCHBOARD__BROKER__V1__COMMIT_OFFSETS_REQUEST__INIT;
  req.stream = (char *)f->stream;
  req.group = (char *)f->group;
  req.offsets = ppo;
  req.n_offsets = n;
  int rc = sb_client_call(f->c->client, method("CommitOffsets"), &req.base, CLI_TIMEOUT_MS, NULL,
                          commit_done, f);
  if (rc) {
    fprintf(stderr, "switchboard: commit: %s\n", sb_strerror(rc));
    f->commit_failed = 1;
    return;
  }
  f->committing = 1;
}

static void on_record(const ProtobufCMessage *msg, void *ud) {
  follow_t *f = ud;
  const Switchboard__Broker__V1__Record *r = (const void *)msg;
  if (f->verbose) {
    printf("# partition=%u offset=%llu", r->partition, (unsigned long long)r->offset);
    if (r->key_text && r->key_text[0]) printf(" key=%s", r->key_text);
    printf("\n");
  }
  print_payload(&r->value, r->text);
  fflush(stdout);
  if (f->group && r->partition < SB_STREAM_PARTITIONS_MAX) {
    f->next[r->partition] = r->offset + 1;
    f->dirty[r->partition] = 1;
    follow_commit(f);
  }
}

static void on_channel_event(const ProtobufCMessage *msg, void *ud) {
  follow_t *f = ud;
  const Switchboard__Broker__V1__ChannelEvent *ev = (const void *)msg;
  if (ev->subscribed) {
    /* On stderr, so stdout carries messages only: a script may wait for this line before it
     * publishes. */
    fprintf(stderr, "# subscribed to %u channel(s) and %u pattern(s)\n", ev->subscribed->channels,
            ev->subscribed->patterns);
    return;
  }
  if (!ev->message) return;
  if (f->verbose)
    printf("# channel=%s%s%s\n", ev->message->channel,
           ev->message->pattern && ev->message->pattern[0] ? " pattern=" : "",
           ev->message->pattern ? ev->message->pattern : "");
  print_payload(&ev->message->data, ev->message->text);
  fflush(stdout);
}

/* Calls server-streaming method `name` and follows it until it ends or a signal; then
 * flushes group commits and frees the client (which ends the stream). Returns the exit
 * status. */
static int follow(cli_t *c, follow_t *f, const char *name, const ProtobufCMessage *req,
                  sb_client_msg_cb on_message) {
  static const int signums[2] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2; i++) {
    uv_signal_init(&c->loop, &f->sig[i]);
    f->sig[i].data = f;
    uv_signal_start(&f->sig[i], follow_signal, signums[i]);
  }
  int rc = sb_client_call(c->client, method(name), req, 0, on_message, follow_done, f);
  if (rc) {
    fprintf(stderr, "switchboard: %s: %s\n", name, sb_strerror(rc));
    f->done = 1;
    f->code = SB_CODE_INTERNAL;
  }
  while (!f->done && !f->stopped && !f->commit_failed)
    uv_run(&c->loop, UV_RUN_ONCE);
  /* What was printed is committed before the stream ends. */
  while (f->group && !f->commit_failed && (f->committing || memchr(f->dirty, 1, sizeof f->dirty))) {
    follow_commit(f);
    if (f->committing) uv_run(&c->loop, UV_RUN_ONCE);
  }
  sb_client_free(c->client);
  c->client = NULL;
  for (int i = 0; i < 2; i++)
    uv_close((uv_handle_t *)&f->sig[i], NULL);
  while (uv_run(&c->loop, UV_RUN_NOWAIT))
    ;
  if (f->commit_failed) return 1;
  if (f->stopped || f->code == SB_CODE_OK) return 0;
  if (f->code == SB_CODE_UNAVAILABLE && strstr(f->message, "connect"))
    fprintf(stderr, "switchboard: cannot reach a server at %s: %s\n", c->addr, f->message);
  else
    fprintf(stderr, "switchboard: %s: %s\n", sb_code_name(f->code), f->message);
  return 1;
}

static int tail_stream(cli_t *c, const opts_t *o) {
  if (o->n_args || (o->from_beginning && o->offset >= 0))
    return usage_error("tail --stream NAME [--from-beginning | --offset N] [--group G] "
                       "[--partition N]...");
  Switchboard__Broker__V1__TailStreamRequest req =
      SWITCHBOARD__BROKER__V1__TAIL_STREAM_REQUEST__INIT;
  uint32_t parts[CLI_NAMES_MAX];
  for (size_t i = 0; i < o->n_partitions; i++)
    parts[i] = (uint32_t)o->partitions[i];
  req.stream = (char *)o->stream;
  req.partitions = parts;
  req.n_partitions = o->n_partitions;
  if (o->from_beginning) req.start = SWITCHBOARD__BROKER__V1__POSITION__POSITION_BEGINNING;
  if (o->offset >= 0) {
    req.start = SWITCHBOARD__BROKER__V1__POSITION__POSITION_OFFSET;
    req.offset = (uint64_t)o->offset;
  }
  req.group = (char *)(o->group ? o->group : "");
  follow_t f;
  memset(&f, 0, sizeof f);
  f.c = c;
  f.verbose = o->verbose;
  f.stream = o->stream;
  f.group = o->group;
  return follow(c, &f, "TailStream", &req.base, on_record);
}

static int tail_channels(cli_t *c, const opts_t *o) {
  if (o->n_args) return usage_error("tail --channel C... | --pattern P...");
  Switchboard__Broker__V1__SubscribeChannelsRequest req =
      SWITCHBOARD__BROKER__V1__SUBSCRIBE_CHANNELS_REQUEST__INIT;
  req.channels = (char **)o->channels;
  req.n_channels = o->n_channels;
  req.patterns = (char **)o->patterns;
  req.n_patterns = o->n_patterns;
  follow_t f;
  memset(&f, 0, sizeof f);
  f.c = c;
  f.verbose = o->verbose;
  return follow(c, &f, "SubscribeChannels", &req.base, on_channel_event);
}
/* Every queue with its depth and counters, then every topic with its subscription count, every
 * stream with its size, and the pub/sub counters. */
static int cmd_stats(cli_t *c, const opts_t *o) {
  if (queue_list(c, o->prefix, 0)) return 1;
  Switchboard__Broker__V1__ListTopicsRequest req =
      SWITCHBOARD__BROKER__V1__LIST_TOPICS_REQUEST__INIT;
  req.page_size = 1000;
  Switchboard__Broker__V1__ListTopicsResponse *res = rpc(c, "ListTopics", &req.base, 0);
  if (!res) return 1;
  if (res->n_names) printf("\n%-32s %13s %9s\n", "TOPIC", "SUBSCRIPTIONS", "PUBLISHED");
  for (size_t i = 0; i < res->n_names; i++) {
    Switchboard__Broker__V1__GetTopicRequest g = SWITCHBOARD__BROKER__V1__GET_TOPIC_REQUEST__INIT;
    g.name = res->names[i];
    Switchboard__Broker__V1__Topic *t = rpc(c, "GetTopic", &g.base, 0);
    if (t)
      printf("%-32s %13llu %9llu\n", t->name, (unsigned long long)t->subscription_count,
             (unsigned long long)t->published);
    release(t);
  }
  release(res);
  printf("\n");
  if (stream_list(c, NULL, 1)) return 1;
  Switchboard__Broker__V1__GetPubSubStatsRequest pr =
      SWITCHBOARD__BROKER__V1__GET_PUB_SUB_STATS_REQUEST__INIT;
  Switchboard__Broker__V1__PubSubStats *ps = rpc(c, "GetPubSubStats", &pr.base, 0);
  if (!ps) return 1;
  printf("\npubsub: %llu channel(s), %llu pattern(s), %llu subscriber(s), %llu published, "
         "%llu delivered, %llu dropped\n",
         (unsigned long long)ps->channels, (unsigned long long)ps->patterns,
         (unsigned long long)ps->subscribers, (unsigned long long)ps->published,
         (unsigned long long)ps->delivered, (unsigned long long)ps->dropped);
  release(ps);
  return 0;
}

int sb_cli_is_broker(const char *cmd) {
  static const char *const cmds[] = {"queue", "send",   "recv",   "tail",   "dlq",
                                     "stats", "stream", "append", "publish"};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(cmd, cmds[i]) == 0) return 1;
  return 0;
}

const char *sb_cli_broker_usage(void) {
  return "  queue create NAME [--fifo] [--visibility MS] [--delay MS] [--wait MS]\n"
         "               [--retention MS] [--max-messages N] [--dlq NAME --max-receives N]\n"
         "  queue list [--prefix P] [--verbose]   queue delete NAME   queue stats NAME\n"
         "  send QUEUE [BODY] [--attr k=v]... [--group G] [--dedup ID] [--delay MS]\n"
         "               (without BODY, the body is read from stdin)\n"
         "  recv QUEUE [--max N] [--wait MS] [--visibility MS] [--ack] [--verbose]\n"
         "  tail QUEUE [--ack] [--verbose] | tail --topic TOPIC   (until Ctrl-C)\n"
         "  dlq list DLQ [--attr k[=v]]\n"
         "  dlq redrive DLQ [--to QUEUE] [--rate N] [--dry-run [--attr k[=v]]]\n"
         "  stream create NAME [--partitions N] [--retention MS]\n"
         "  stream list [--prefix P] [--verbose]   stream delete NAME   stream stats NAME\n"
         "  append STREAM [BODY]... [--key K] [--partition N]   (no BODY: one from stdin)\n"
         "  tail --stream NAME [--from-beginning | --offset N] [--group G] [--partition N]...\n"
         "               (--group starts at the group's offsets and commits what it printed)\n"
         "  publish --channel CHANNEL [BODY]   (no BODY: stdin)\n"
         "  tail --channel CHANNEL... --pattern GLOB...   (until Ctrl-C)\n"
         "  stats        depth and counters of every queue, topic, stream and of pub/sub\n"
         "  (broker commands talk to a running server: --addr HOST:PORT, default " CLI_DEFAULT_ADDR
         ")\n";
}

int sb_cli_broker(const char *cmd, int argc, char **argv) {
  opts_t o;
  if (parse(argc, argv, &o)) return 2;
  cli_t c;
  if (cli_open(&c, o.addr)) return 2;
  int rc;
  if (strcmp(cmd, "queue") == 0)
    rc = cmd_queue(&c, &o);
  else if (strcmp(cmd, "send") == 0)
    rc = cmd_send(&c, &o);
  else if (strcmp(cmd, "recv") == 0)
    rc = cmd_recv(&c, &o);
  else if (strcmp(cmd, "tail") == 0)
    rc = cmd_tail(&c, &o);
  else if (strcmp(cmd, "dlq") == 0)
    rc = cmd_dlq(&c, &o);
  else if (strcmp(cmd, "stream") == 0)
    rc = cmd_stream(&c, &o);
  else if (strcmp(cmd, "append") == 0)
    rc = cmd_append(&c, &o);
  else if (strcmp(cmd, "publish") == 0)
    rc = cmd_publish(&c, &o);
  else
    rc = cmd_stats(&c, &o);
  cli_close(&c);
  fflush(stdout);
  return rc;
}
