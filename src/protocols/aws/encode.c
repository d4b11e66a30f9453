/*
 * The response encoder of the AWS front-ends (aws.h): one call sequence, two wire forms.
 * Query responses follow botocore's model for the 2012-11-05 API: every list and map of a
 * result is flattened (its items repeat the member's locationName), maps are entries of
 * (Name|Key, Value). May run on any thread; it touches only the buffer it is given.
 */
#include <stdio.h>
#include <string.h>

#include "protocols/aws/aws.h"
#include "switchboard/error.h"

static void put(aws_enc_t *e, const char *s) {
  if (!e->err && sb_buf_append(e->out, s, strlen(s))) e->err = SB_ENOMEM;
}

int sb__aws_xml_text(sb_buf_t *out, const char *s, size_t len) {
  size_t run = 0;
  for (size_t i = 0; i < len; i++) {
    const char *rep = NULL;
    switch (s[i]) {
    case '&':
      rep = "&amp;";
      break;
    case '<':
      rep = "&lt;";
      break;
    case '>':
      rep = "&gt;";
      break;
    case '\r':
      rep = "&#xD;";
      break;
    default:
      break;
    }
    if (!rep) continue;
    if (sb_buf_append(out, s + run, i - run) || sb_buf_append(out, rep, strlen(rep)))
      return SB_ENOMEM;
    run = i + 1;
  }
  return sb_buf_append(out, s + run, len - run) ? SB_ENOMEM : 0;
}

static void xml_elem(aws_enc_t *e, const char *name, const char *s, size_t len) {
  put(e, "<");
  put(e, name);
  put(e, ">");
  if (!e->err && sb__aws_xml_text(e->out, s, len)) e->err = SB_ENOMEM;
  put(e, "</");
  put(e, name);
  put(e, ">");
}

static void jw_check(aws_enc_t *e) {
  if (!e->err && e->jw.err) e->err = e->jw.err;
}

void sb__aws_enc_begin(aws_enc_t *e, sb_buf_t *out, int json, const char *action, int result,
                       const char *xmlns) {
  memset(e, 0, sizeof *e);
  e->out = out;
  e->json = json;
  if (json) {
    sb_jw_init(&e->jw, out);
    sb_jw_obj_begin(&e->jw);
    jw_check(e);
    return;
  }
  put(e, "<?xml version=\"1.0\"?><");
  put(e, action);
  put(e, "Response xmlns=\"");
  put(e, xmlns);
  put(e, "\">");
  if (result) {
    put(e, "<");
    put(e, action);
    put(e, "Result>");
  }
}

void sb__aws_enc_end(aws_enc_t *e, const char *action, int result, const char *request_id) {
  if (e->json) {
    sb_jw_obj_end(&e->jw);
    jw_check(e);
    return;
  }
  if (result) {
    put(e, "</");
    put(e, action);
    put(e, "Result>");
  }
  put(e, "<ResponseMetadata><RequestId>");
  put(e, request_id);
  put(e, "</RequestId></ResponseMetadata></");
  put(e, action);
  put(e, "Response>");
}

static void json_key(aws_enc_t *e, const char *name) {
  sb_jw_key(&e->jw, name, strlen(name));
}

void sb__aws_enc_str(aws_enc_t *e, const char *name, const char *s, size_t len) {
  if (e->json) {
    json_key(e, name);
    sb_jw_str(&e->jw, s, len);
    jw_check(e);
  } else {
    xml_elem(e, name, s, len);
  }
}

void sb__aws_enc_int(aws_enc_t *e, const char *name, int64_t v) {
  if (e->json) {
    json_key(e, name);
    sb_jw_int(&e->jw, v);
    jw_check(e);
  } else {
    char t[24];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    xml_elem(e, name, t, (size_t)n);
  }
}

void sb__aws_enc_bool(aws_enc_t *e, const char *name, int v) {
  if (e->json) {
    json_key(e, name);
    sb_jw_bool(&e->jw, v);
    jw_check(e);
  } else {
    xml_elem(e, name, v ? "true" : "false", v ? 4 : 5);
  }
}

static void push(aws_enc_t *e, const char *item, const char *k, const char *v) {
  if (e->depth >= AWS_ENC_DEPTH) {
    e->err = SB_EINVAL;
    return;
  }
  e->st[e->depth].item = item;
  e->st[e->depth].kname = k;
  e->st[e->depth].vname = v;
  e->st[e->depth].wrap = NULL;
  e->depth++;
}

/* Wrapped lists and maps: <Name><member>..</member></Name>, <Name><entry><key>..</key>
 * <value>..</value></entry></Name>. */
void sb__aws_enc_wlist_begin(aws_enc_t *e, const char *name) {
  sb__aws_enc_list_begin(e, name, "member");
  if (e->json || !e->depth) return;
  e->st[e->depth - 1].wrap = name;
  put(e, "<");
  put(e, name);
  put(e, ">");
}

void sb__aws_enc_wmap_begin(aws_enc_t *e, const char *name) {
  sb__aws_enc_map_begin(e, name, "entry", "key", "value");
  if (e->json || !e->depth) return;
  e->st[e->depth - 1].wrap = name;
  put(e, "<");
  put(e, name);
  put(e, ">");
}

static void close_wrap(aws_enc_t *e) {
  if (e->json || !e->depth || !e->st[e->depth - 1].wrap) return;
  put(e, "</");
  put(e, e->st[e->depth - 1].wrap);
  put(e, ">");
}

static const char *top_item(const aws_enc_t *e) {
  return e->depth ? e->st[e->depth - 1].item : "member";
}

/* Opens a list (map: 0) or map (1): a JSON array or object, or nothing yet in XML, where
 * items and entries repeat xml_item. */
static void open_container(aws_enc_t *e, int map, const char *json_name, const char *xml_item,
                           const char *kname, const char *vname) {
  push(e, xml_item, kname, vname);
  if (e->json) {
    json_key(e, json_name);
    if (map)
      sb_jw_obj_begin(&e->jw);
    else
      sb_jw_arr_begin(&e->jw);
    jw_check(e);
  }
}

static void close_container(aws_enc_t *e, int map) {
  close_wrap(e);
  if (e->depth) e->depth--;
  if (e->json) {
    if (map)
      sb_jw_obj_end(&e->jw);
    else
      sb_jw_arr_end(&e->jw);
    jw_check(e);
  }
}

void sb__aws_enc_list_begin(aws_enc_t *e, const char *json_name, const char *xml_item) {
  open_container(e, 0, json_name, xml_item, NULL, NULL);
}

void sb__aws_enc_list_end(aws_enc_t *e) {
  close_container(e, 0);
}

void sb__aws_enc_item_begin(aws_enc_t *e) {
  if (e->json) {
    sb_jw_obj_begin(&e->jw);
    jw_check(e);
  } else {
    put(e, "<");
    put(e, top_item(e));
    put(e, ">");
  }
}

void sb__aws_enc_item_end(aws_enc_t *e) {
  if (e->json) {
    sb_jw_obj_end(&e->jw);
    jw_check(e);
  } else {
    put(e, "</");
    put(e, top_item(e));
    put(e, ">");
  }
}

void sb__aws_enc_item_str(aws_enc_t *e, const char *s, size_t len) {
  if (e->json) {
    sb_jw_str(&e->jw, s, len);
    jw_check(e);
  } else {
    xml_elem(e, top_item(e), s, len);
  }
}

void sb__aws_enc_map_begin(aws_enc_t *e, const char *json_name, const char *xml_entry,
                           const char *kname, const char *vname) {
  open_container(e, 1, json_name, xml_entry, kname, vname);
}

void sb__aws_enc_map_end(aws_enc_t *e) {
  close_container(e, 1);
}

void sb__aws_enc_map_str(aws_enc_t *e, const char *k, size_t klen, const char *v, size_t vlen) {
  if (e->json) {
    sb_jw_key(&e->jw, k, klen);
    sb_jw_str(&e->jw, v, vlen);
    jw_check(e);
    return;
  }
  if (!e->depth) {
    e->err = SB_EINVAL;
    return;
  }
  put(e, "<");
  put(e, e->st[e->depth - 1].item);
  put(e, ">");
  xml_elem(e, e->st[e->depth - 1].kname, k, klen);
  xml_elem(e, e->st[e->depth - 1].vname, v, vlen);
  put(e, "</");
  put(e, e->st[e->depth - 1].item);
  put(e, ">");
}

void sb__aws_enc_entry_begin(aws_enc_t *e, const char *k, size_t klen) {
  if (e->json) {
    sb_jw_key(&e->jw, k, klen);
    sb_jw_obj_begin(&e->jw);
    jw_check(e);
    return;
  }
  if (!e->depth) {
    e->err = SB_EINVAL;
    return;
  }
  put(e, "<");
  put(e, e->st[e->depth - 1].item);
  put(e, ">");
  xml_elem(e, e->st[e->depth - 1].kname, k, klen);
  put(e, "<");
  put(e, e->st[e->depth - 1].vname);
  put(e, ">");
}

void sb__aws_enc_entry_end(aws_enc_t *e) {
  if (e->json) {
    sb_jw_obj_end(&e->jw);
    jw_check(e);
    return;
  }
  if (!e->depth) return;
  put(e, "</");
  put(e, e->st[e->depth - 1].vname);
  put(e, "></");
  put(e, e->st[e->depth - 1].item);
  put(e, ">");
}
