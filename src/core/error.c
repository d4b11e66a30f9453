#include <string.h>

#include "switchboard/error.h"

const char *sb_strerror(int err) {
  switch (err) {
  case SB_OK:
    return "ok";
  case SB_EINVAL:
    return "invalid argument";
  case SB_ENOMEM:
    return "out of memory";
  case SB_ESTATE:
    return "not allowed in the current state";
  case SB_ECANCELED:
    return "canceled by the peer";
  case SB_ELIMIT:
    return "limit exceeded";
  case SB_EPROTO:
    return "protocol violation by the peer";
  case SB_ENOTFOUND:
    return "not found";
  case SB_EAGAIN:
    return "try again later";
  case SB_ENOSPC:
    return "no space left (disk full or below its reserve)";
  case SB_ECORRUPT:
    return "stored data is corrupt";
  case SB_EIO:
    return "I/O error";
  case SB_ETLS:
    return "TLS error";
  default:
    break;
  }
  /* strerror() may use a shared buffer for unknown values; every errno we pass is known. */
  if (sb_err_is_errno(err)) return strerror(-err);
  return "unknown error";
}
