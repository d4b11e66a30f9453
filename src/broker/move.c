/*
 * Move tasks: messages of a dead-letter queue sent back to the queues they came from (or to
 * one destination), at a bounded rate, cancellable, with progress persisted in the catalog
 * so a task survives a restart. Runs on the broker thread.
 *
 * A message is moved by appending a copy to the destination (same id, body and attributes;
 * the failure metadata dropped) and, once that copy is durable, deleting it from the
 * dead-letter queue. A crash between the two leaves the message in both places: delivery is
 * at least once, never lost.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "switchboard/error.h"

#define PERSIST_EVERY 100 /* moved messages between progress records */

struct sb__move {
  sb__move_t *next;    /* the broker's list, newest first */
  sb_move_task_t t;    /* public view; t.moved counts completed moves */
  uint64_t cursor;     /* next seq of the source to look at */
  uint32_t inflight;   /* moves started, not finished */
  int64_t base_ms;     /* rate accounting starts here (start or restart) */
  uint64_t base_moved; /* t.moved at base_ms */
  uint64_t persisted;  /* t.moved in the last progress record */
};

typedef struct step {
  sb_broker_t *b;
  sb__move_t *m;
  uint64_t src_id; /* the dead-letter queue */
  uint64_t seq;    /* the message there */
} step_t;

static void persist(sb_broker_t *b, sb__move_t *m) {
  m->persisted = m->t.moved;
  sb__catalog_put_move(b, &m->t);
}

static void finish_task(sb_broker_t *b, sb__move_t *m, sb_move_state_t st, const char *why) {
  if (m->t.state != SB_MOVE_RUNNING) return;
  m->t.state = st;
  if (why) snprintf(m->t.failure, sizeof m->t.failure, "%s", why);
  persist(b, m);
}

static void step_removed(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  (void)seq;
  step_t *s = ctx;
  sb__move_t *m = s->m;
  m->inflight--;
  if (status == 0) m->t.moved++;
  if (m->t.moved - m->persisted >= PERSIST_EVERY) persist(b, m);
  free(s);
  sb__move_schedule(b, 0);
}

static void step_copied(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  (void)seq;
  step_t *s = ctx;
  sb__queue_t *src = sb__queue_by_id(b, s->src_id);
  if (!src || src->deleted) {
    s->m->inflight--;
    finish_task(b, s->m, SB_MOVE_FAILED, "the dead-letter queue was deleted");
    free(s);
    return;
  }
  if (status) {
    sb__queue_unmove(b, src, s->seq);
    s->m->inflight--;
    finish_task(b, s->m, SB_MOVE_FAILED, "the destination refused a message");
    free(s);
    return;
  }
  if (sb__queue_remove(b, src, s->seq, step_removed, s)) {
    s->m->inflight--;
    free(s);
  }
}

/* Finds the ":ds" field (the source a message was dead-lettered from). */
static bool dlq_source(const sb_journal_record_t *r, char *out, size_t cap) {
  uint32_t pos = 0;
  const uint8_t *n, *v;
  uint16_t nl;
  uint32_t vl;
  while (sb_journal_header_next(r, &pos, &n, &nl, &v, &vl)) {
    if (nl == 3 && memcmp(n, ":ds", 3) == 0 && vl < cap) {
      memcpy(out, v, vl);
      out[vl] = 0;
      return true;
    }
  }
  return false;
}

/* Starts one move from m's source. Returns false when there is nothing to start. */
static bool start_one(sb_broker_t *b, sb__move_t *m, int64_t now) {
  sb__queue_t *src = sb__queue_find(b, m->t.source);
  if (!src) {
    finish_task(b, m, SB_MOVE_FAILED, "the dead-letter queue was deleted");
    return false;
  }
  if (m->t.to_move && m->t.moved + m->inflight >= m->t.to_move) return false;
  uint64_t seq;
  if (!sb__queue_take_visible(src, m->cursor, &seq)) return false;
  m->cursor = seq + 1;
  sb_journal_record_t rec;
  char dest_name[SB_BROKER_NAME_MAX + 1];
  sb__queue_t *dest = NULL;
  int rc = sb__queue_read(src, seq, &rec);
  if (rc == 0) {
    if (m->t.destination[0])
      snprintf(dest_name, sizeof dest_name, "%s", m->t.destination);
    else if (!dlq_source(&rec, dest_name, sizeof dest_name))
      dest_name[0] = 0;
    dest = dest_name[0] ? sb__queue_find(b, dest_name) : NULL;
  }
  step_t *s = malloc(sizeof *s);
  if (rc || !dest || dest == src || !s) {
    free(s);
    sb__queue_unmove(b, src, seq);
    finish_task(b, m, SB_MOVE_FAILED,
                rc ? "a message could not be read" : "a destination queue does not exist");
    return false;
  }
  *s = (step_t){b, m, src->id, seq};
  rc = sb__queue_append_copy(b, dest, &rec, NULL, NULL, now, step_copied, s);
  if (rc) {
    free(s);
    sb__queue_unmove(b, src, seq);
    finish_task(b, m, SB_MOVE_FAILED, "the destination refused a message");
    return false;
  }
  m->inflight++;
  return true;
}

int64_t sb__move_tick(sb_broker_t *b, int64_t now) {
  int64_t next = INT64_MAX;
  for (sb__move_t *m = b->moves; m; m = m->next) {
    if (m->t.state != SB_MOVE_RUNNING) continue;
    while (m->inflight < SB__MOVE_BATCH && m->t.state == SB_MOVE_RUNNING) {
      if (m->t.rate) {
        uint64_t allowed = m->base_moved + (uint64_t)(now - m->base_ms) * m->t.rate / 1000 + 1;
        if (m->t.moved + m->inflight >= allowed) {
          int64_t at =
              m->base_ms + (int64_t)((m->t.moved + m->inflight - m->base_moved) * 1000 / m->t.rate);
          if (at < next) next = at > now ? at : now + 1;
          break;
        }
      }
      if (!start_one(b, m, now)) {
        if (!m->inflight) finish_task(b, m, SB_MOVE_COMPLETED, NULL);
        break;
      }
    }
  }
  return next;
}

static sb__move_t *add_task(sb_broker_t *b, const sb_move_task_t *t) {
  sb__move_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->t = *t;
  m->base_ms = sb__now_ms();
  m->base_moved = m->persisted = t->moved;
  m->next = b->moves;
  b->moves = m;
  return m;
}

static void result_one(sb__op_t *op, const sb_move_task_t *t) {
  op->tasks = sb_arena_alloc(&op->arena, sizeof *op->tasks);
  if (!op->tasks) return;
  op->tasks[0] = *t;
  op->n_tasks = 1;
}

void sb__move_start(sb_broker_t *b, sb__op_t *op) {
  sb__queue_t *src = sb__queue_find(b, op->name);
  if (!src || (op->has_name2 && op->name2[0] && !sb__queue_find(b, op->name2))) {
    sb__op_finish(b, op, SB_ENOTFOUND);
    return;
  }
  for (sb__move_t *m = b->moves; m; m = m->next)
    if (m->t.state == SB_MOVE_RUNNING && strcmp(m->t.source, op->name) == 0) {
      sb__op_finish(b, op, SB_ESTATE);
      return;
    }
  sb_move_task_t t;
  memset(&t, 0, sizeof t);
  snprintf(t.handle, sizeof t.handle, "%016" PRIx64, b->next_move++);
  snprintf(t.source, sizeof t.source, "%s", op->name);
  if (op->has_name2) snprintf(t.destination, sizeof t.destination, "%s", op->name2);
  t.rate = op->rate;
  t.state = SB_MOVE_RUNNING;
  t.to_move = src->n_visible;
  t.started_ms = sb__now_ms();
  sb__move_t *m = add_task(b, &t);
  if (!m) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  persist(b, m);
  result_one(op, &m->t);
  sb__op_finish(b, op, 0);
  sb__move_schedule(b, 0);
}

void sb__move_cancel(sb_broker_t *b, sb__op_t *op) {
  for (sb__move_t *m = b->moves; m; m = m->next) {
    if (strcmp(m->t.handle, op->name) != 0) continue;
    if (m->t.state != SB_MOVE_RUNNING) {
      sb__op_finish(b, op, SB_ESTATE);
      return;
    }
    finish_task(b, m, SB_MOVE_CANCELLED, NULL);
    result_one(op, &m->t);
    sb__op_finish(b, op, 0);
    return;
  }
  sb__op_finish(b, op, SB_ENOTFOUND);
}

void sb__move_list(sb_broker_t *b, sb__op_t *op) {
  size_t n = 0;
  for (sb__move_t *m = b->moves; m; m = m->next)
    n++;
  op->tasks = sb_arena_alloc(&op->arena, (n + 1) * sizeof *op->tasks);
  if (!op->tasks) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  for (sb__move_t *m = b->moves; m && op->n_tasks < op->n; m = m->next)
    if (!op->name[0] || strcmp(m->t.source, op->name) == 0) op->tasks[op->n_tasks++] = m->t;
  sb__op_finish(b, op, 0);
}

int sb__move_restore(sb_broker_t *b, const sb_move_task_t *t, uint64_t cursor) {
  for (sb__move_t *m = b->moves; m; m = m->next)
    if (strcmp(m->t.handle, t->handle) == 0) {
      m->t = *t;
      m->base_moved = m->persisted = t->moved;
      m->cursor = cursor;
      return 0;
    }
  sb__move_t *m = add_task(b, t);
  if (!m) return SB_ENOMEM;
  m->cursor = cursor;
  return 0;
}

void sb__move_free_all(sb_broker_t *b) {
  for (sb__move_t *m = b->moves, *n; m; m = n) {
    n = m->next;
    free(m);
  }
  b->moves = NULL;
}
